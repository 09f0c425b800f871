// The `cora` command: parses arguments with CLI11 and dispatches to cora::app from one table.
// Exit codes: 0 ok, 1 failure, 2 usage error; errors print `error: ...` on stderr.
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cora/app/commands.h"
#include "cora/app/plan.h"
#include "cora/app/table.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/train/dist.h"

namespace {

struct Subcommand {
  const char* name;
  const char* help;
  // Declares the options on `sub` and returns the action to run after parsing.
  std::function<std::function<int()>(CLI::App* sub)> setup;
};

std::vector<Subcommand> table() {
  using namespace cora::app;
  return {
      {"prepare", "raw Amazon / MovieLens / RecBole data into a split directory (+ stats.json)",
       [](CLI::App* s) {
         auto a = std::make_shared<PrepareArgs>();
         s->add_option("--format", a->format,
                       "amazon2014 | amazon2018 | amazon2023 | ml-1m | ml-100k | movielens-csv | "
                       "recbole (default: detected)")
             ->check(CLI::IsMember({"amazon2014", "amazon2018", "amazon2023", "ml-1m", "ml-100k",
                                    "movielens-csv", "recbole"}));
         s->add_option("--input", a->inputs, "input files or directories (plain or .gz)")
             ->required()->allow_extra_args(true);
         s->add_option("--out", a->out, "split directory to write (replaced atomically)")->required();
         s->add_option("--config", a->config, "protocol config (prepare.* keys; configs/data/)")
             ->check(CLI::ExistingFile);
         s->add_option("--set", a->overrides, "override a protocol key: prepare.key=value")
             ->allow_extra_args(false);
         s->add_option("--max-bad-lines", a->max_bad_lines,
                       "malformed lines tolerated (counted, first 5 shown; default 0)");
         return [a] { return prepare(*a); };
       }},
      {"train", "train a config's method, select on validation, evaluate on test",
       [](CLI::App* s) {
         auto a = std::make_shared<TrainArgs>();
         s->add_option("--config", a->config, "JSON config file")->required()->check(CLI::ExistingFile);
         s->add_option("--out", a->out, "run directory")->required();
         s->add_option("--set", a->overrides, "override a config key: key.path=value")
             ->allow_extra_args(false);
         s->add_flag("--resume", a->resume, "continue an interrupted run in --out");
         return [a] { return train(*a); };
       }},
      {"pretrain", "train a tokenizer and a small LLaMA offline; saves Hugging Face layout",
       [](CLI::App* s) {
         auto a = std::make_shared<TrainArgs>();
         s->add_option("--config", a->config, "JSON config (method \"pretrain\")")->required()->check(CLI::ExistingFile);
         s->add_option("--out", a->out, "output directory (the model directory)")->required();
         s->add_option("--set", a->overrides, "override a config key: key.path=value")
             ->allow_extra_args(false);
         s->add_flag("--resume", a->resume, "continue an interrupted pretraining in --out");
         return [a] { return pretrain(*a); };
       }},
      {"eval", "re-evaluate a finished run from its saved state (AUC, UAUC, warm/cold)",
       [](CLI::App* s) {
         auto a = std::make_shared<EvalArgs>();
         s->add_option("--run", a->run, "run directory")->required()->check(CLI::ExistingDirectory);
         s->add_option("--split", a->split, "valid | valid_small | test")
             ->check(CLI::IsMember({"valid", "valid_small", "test", "train"}));
         return [a] { return eval(*a); };
       }},
      {"generate", "greedy decoding from a Hugging Face checkpoint directory (prints ids)",
       [](CLI::App* s) {
         auto a = std::make_shared<GenerateArgs>();
         s->add_option("--model", a->model, "checkpoint directory")->required()->check(CLI::ExistingDirectory);
         s->add_option("--ids", a->ids, "prompt token ids, comma-separated");
         s->add_option("--prompt", a->prompt, "prompt text (the directory's tokenizer.model or tokenizer.json)");
         s->add_option("--max-new-tokens", a->max_new_tokens, "tokens to generate");
         s->add_flag("--stop-at-eos", a->stop_at_eos, "stop after the eos token");
         s->add_option("--device", a->device, "cpu | cuda | auto");
         s->add_option("--dtype", a->dtype, "auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16")
             ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
         s->add_option("--logits", a->logits, "also write every prompt position's logits (fp32) to this safetensors file");
         s->add_option("--threads", a->threads, "intra-op threads (0 = every core this process may run on: its CPU affinity)");
         return [a] { return generate(*a); };
       }},
      {"tokenize", "a tokenizer's ids for each line of text (tokenizer.model or tokenizer.json)",
       [](CLI::App* s) {
         auto a = std::make_shared<TokenizeArgs>();
         s->add_option("--tokenizer", a->tokenizer, "tokenizer.model, tokenizer.json, or a checkpoint directory")
             ->required()->check(CLI::ExistingPath);
         s->add_option("--input", a->input, "text file, one input per line (default: standard input)");
         s->add_flag("--decode", a->decode, "append each line's ids decoded back, after a tab");
         return [a] { return tokenize(*a); };
       }},
      {"bench", "benchmarks; prints one JSON object per measurement",
       [](CLI::App* s) {
         auto a = std::make_shared<BenchArgs>();
         s->add_option("what", a->what, "cf | llm | train | eval | prepare | metrics | split")->required();
         s->add_option("--mb", a->megabytes, "prepare: megabytes of generated reviews (default 200)");
         s->add_option("--rows", a->rows, "metrics, split: generated rows (default 1,000,000)")
             ->check(CLI::Range(int64_t{100}, int64_t{1} << 40));
         s->add_option("--users", a->users, "split: generated users (default rows / 25)")
             ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
         s->add_option("--config", a->config, "JSON config file")->check(CLI::ExistingFile);
         s->add_option("--set", a->overrides, "override a config key: key.path=value")
             ->allow_extra_args(false);
         return [a] { return bench(*a); };
       }},
      {"plan", "per-device memory of a config's training step; the largest micro-batch that fits",
       [](CLI::App* s) {
         auto a = std::make_shared<PlanArgs>();
         s->add_option("--config", a->config, "JSON config (an LLM method)")->required()->check(CLI::ExistingFile);
         s->add_option("--set", a->overrides, "override a config key: key.path=value")
             ->allow_extra_args(false);
         s->add_option("--device", a->device, "cuda (bf16 LLM, fused attention; default) | cpu (fp32) | auto")
             ->check(CLI::IsMember({"cuda", "cpu", "auto"}));
         s->add_option("--tokens", a->tokens, "prompt length in tokens (default 160)")->check(CLI::PositiveNumber);
         s->add_option("--memory-gb", a->memory_gb, "device memory: print the largest micro-batch that fits");
         s->add_flag("--json", a->json, "one JSON object instead of the table");
         return [a] { return plan(*a); };
       }},
      {"table", "every row of a results table over seeds (reuses finished runs, resumes others)",
       [](CLI::App* s) {
         auto a = std::make_shared<TableArgs>();
         s->add_option("--config", a->config, "table spec (configs/tables/)")->required()->check(CLI::ExistingFile);
         s->add_option("--out", a->out, "output directory: runs/, table.md, table.csv")->required();
         s->add_option("--set", a->overrides, "override a config key of every row: key.path=value")
             ->allow_extra_args(false);
         s->add_flag("--dry-run", a->dry_run, "check every input and print the plan; train nothing");
         s->add_flag("--collect", a->collect,
                     "write table.md and table.csv from the runs finished so far; train nothing "
                     "(e.g. while other processes run the remaining seeds)");
         return [a] { return table(*a); };
       }},
      {"probe", "what a trained run does to its LLM outside recommendation (held-out perplexity, WordNet cloze)",
       [](CLI::App* s) {
         auto a = std::make_shared<ProbeArgs>();
         auto& o = a->o;
         s->add_option("--run", o.run, "a finished LLM run (writes <run>/probe.json)")->check(CLI::ExistingDirectory);
         s->add_option("--llm", o.llm, "or a checkpoint directory alone (the base LLM)")->check(CLI::ExistingDirectory);
         s->add_option("--table", a->table, "or every LLM run of a `cora table` output directory not yet probed")
             ->check(CLI::ExistingDirectory);
         s->add_option("--text", o.text, "held-out text, one document per line (default: <llm>/heldout_glosses.txt)")
             ->check(CLI::ExistingFile);
         s->add_option("--wordnet", o.wordnet, "WordNet dict directory (default: the LLM's pretraining one, else /usr/share/wordnet)");
         s->add_option("--pairs", o.pairs, "CoRA: (user, item) pairs of the test split (default 100)");
         s->add_option("--max-tokens", o.max_tokens, "held-out tokens scored (default 8192)");
         s->add_option("--window", o.window, "tokens per perplexity window (default 128)");
         s->add_option("--candidates", o.candidates, "cloze candidate set size (default 50)");
         s->add_option("--cloze-items", o.cloze_items, "at most this many cloze items (default 500)");
         s->add_option("--batch", o.batch, "windows or cloze prompts per forward pass (default 16)");
         s->add_option("--seed", o.seed, "pair and cloze sampling seed (default 0)");
         s->add_option("--device", o.device, "cpu | cuda | auto");
         s->add_option("--threads", o.threads, "intra-op threads (0 = every core this process may run on: its CPU affinity)");
         s->add_option("--out", a->out, "also write the JSON to this file");
         return [a] { return probe(*a); };
       }},
      {"report", "HTML report (table + SVG charts) of a `cora table` output directory",
       [](CLI::App* s) {
         auto a = std::make_shared<ReportArgs>();
         s->add_option("--table", a->dir, "the table's --out directory")->required()->check(CLI::ExistingDirectory);
         s->add_option("--out", a->out, "HTML file (default: <table>/report.html)");
         return [a] { return report(*a); };
       }},
      {"config-keys", "print every config key with its type, default and meaning",
       [](CLI::App*) { return [] { return config_keys(); }; }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cora: collaborative information written into a frozen LLM's weights (CoRA)"};
  app.require_subcommand(1);
  std::function<int()> action;
  for (const auto& cmd : table()) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.help);
    auto run = cmd.setup(sub);
    sub->callback([&action, run] { action = run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  // Under torchrun the other ranks' messages carry their rank; a rank that fails on its own
  // (not because a peer did) tells the others through the rendezvous store before exiting.
  auto who = [] { return cora::dist::active() ? "[rank " + std::to_string(cora::dist::rank()) + "] " : std::string(); };
  try {
    return action();
  } catch (const cora::Interrupted& e) {
    std::cerr << who() << "stopped: " << e.what() << "\n";
    return cora::kExitInterrupted;
  } catch (const cora::UsageError& e) {
    std::cerr << who() << "error: " << e.what() << "\n";
    cora::dist::report_failure(e.what());
    return 2;
  } catch (const cora::dist::PeerFailure& e) {
    std::cerr << who() << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    const std::string msg = cora::error_message(e);
    std::cerr << who() << "error: " << msg << "\n";
    cora::dist::report_failure(msg);
    return 1;
  }
}
