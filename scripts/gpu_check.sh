#!/usr/bin/env bash
# The prepared device check, for an NVIDIA machine of the kind the users have: a PyTorch 2.x wheel
# with CUDA, transformers, cmake, ninja, nvcc; no internet. In one go (target < 10 minutes):
#   1. build cora against the wheel's libtorch (torch.utils.cmake_prefix_path); what the machine
#      lacks comes from third_party/deb/ (scripts/gpu_deps.sh, run beforehand where Debian's
#      archive is reachable; carried with the tree);
#   2. the test suite (unit, behaviour, dist) with CUDA visible;
#   3. cora's LLaMA against transformers' LlamaForCausalLM on a random Vicuna-width model, fp32
#      and bf16: logits of every position and the greedy continuation (tests/gpu/hf_compare.py);
#   4. `cora bench llm|train|eval` at Vicuna-7B shape (random bf16 weights) beside the PyTorch
#      peer (tests/gpu/peer_bench.py): samples/s and MFU.
# Everything lands in $OUT (default runs/gpu_check/out): logs, *.jsonl, summary.txt. Exit 0 only
# when every step passed.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
out=${OUT:-$src/runs/gpu_check/out}
mkdir -p "$out"
py=${PYTHON:-python3}
deb=$src/third_party/deb
build=${CORA_BUILD_DIR:-$src/build-gpu}
summary=$out/summary.txt
: >"$summary"
status=0
t0=$SECONDS
step() {  # step NAME COMMAND...: runs it, logs to $out/NAME.log, records the outcome
  local name=$1 s=$SECONDS rc
  shift
  "$@" >"$out/$name.log" 2>&1
  rc=$?
  printf '%-12s %s (%ds)\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc")" $((SECONDS - s)) | tee -a "$summary"
  [ $rc -eq 0 ] || status=1
  return $rc
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "python", sys.version.split()[0])'
  nproc; } >"$out/machine.txt" 2>&1
[ -d "$deb/usr" ] || echo "gpu_check: no $deb (run scripts/gpu_deps.sh where Debian's archive is reachable)" | tee -a "$summary"
torch_prefix=$($py -c 'import torch; print(torch.utils.cmake_prefix_path)')
export LD_LIBRARY_PATH="$deb/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)

configure() {
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$deb/usr" -DCMAKE_INCLUDE_PATH="$deb/usr/include" \
    -DCMAKE_LIBRARY_PATH="$deb/usr/lib/x86_64-linux-gnu" -DCMAKE_CUDA_ARCHITECTURES=native
}
step configure configure && step build ninja -C "$build" || { cat "$summary"; exit 1; }
grep -q "USE_C10D_NCCL" "$build/build.ninja" && echo "nccl        compiled in" | tee -a "$summary" ||
  echo "nccl        NOT compiled in (the wheel's torch target has no USE_C10D_NCCL)" | tee -a "$summary"

# A small split for the benchmarks' CF stand-in (the benchmarks need ids, not real data).
mkdir -p runs/gpu_check/data
$py - <<'PY'
import random
random.seed(0)
d = "runs/gpu_check/data"
open(f"{d}/items.tsv", "w").write("iid\ttitle\n" + "".join(f"{i}\tItem {i}\n" for i in range(1, 201)))
for split, n in (("train", 2000), ("valid", 200), ("valid_small", 100), ("test", 200)):
    with open(f"{d}/{split}.tsv", "w") as f:
        f.write("uid\tiid\tlabel\ttimestamp\tnot_cold\thistory\n")
        for k in range(n):
            u, i = random.randint(1, 100), random.randint(1, 200)
            hist = ",".join(str(random.randint(1, 200)) for _ in range(5))
            f.write(f"{u}\t{i}\t{random.randint(0, 1)}\t{k}\t1\t{hist}\n")
PY

step tests ctest --test-dir "$build" -R "unit|behaviour|dist" --output-on-failure
step hf_compare $py tests/gpu/hf_compare.py --cora "$build/cora" --layers 4 --out runs/gpu_check/hf
cat "$out/hf_compare.log" | grep '^{' >"$out/hf_compare.jsonl"
: >"$out/bench.jsonl"
for what in llm train eval; do
  step "bench_$what" sh -c "'$build/cora' bench $what --config configs/bench/vicuna7b_gpu.json >>'$out/bench.jsonl'"
done
step peer_bench sh -c "$py tests/gpu/peer_bench.py >>'$out/bench.jsonl'"
echo "total        $((SECONDS - t0))s" | tee -a "$summary"
cat "$out/hf_compare.jsonl" "$out/bench.jsonl"
exit $status
