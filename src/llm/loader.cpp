// Checkpoint directory → Llama: name-for-name parameter binding with shape checks.
#include "cora/llm/loader.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"

namespace cora::llm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Which file holds each tensor.
std::map<std::string, std::string> weight_files(const std::string& dir) {
  std::map<std::string, std::string> where;
  const std::string index = dir + "/model.safetensors.index.json";
  if (fs::exists(index)) {
    json j = json::parse(io::read_file(index), nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error::at(index, 0, "missing 'weight_map' object");
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      std::string file = it->get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        throw Error::at(index, 0, "shard name '" + file + "' must be a plain file name");
      where[it.key()] = dir + "/" + file;
    }
    return where;
  }
  const std::string single = dir + "/model.safetensors";
  if (fs::exists(single)) {
    io::SafetensorsFile f(single);
    for (const auto& t : f.header().tensors) where[t.name] = single;
    return where;
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.rfind("pytorch_model", 0) == 0 && e.path().extension() == ".bin")
      throw Error::at(e.path().string(), 0,
                      "pickled checkpoints are not loaded (they can run code); hint: convert "
                      "to safetensors, e.g. in Python: `AutoModelForCausalLM.from_pretrained(dir)"
                      ".save_pretrained(out, safe_serialization=True)`");
  }
  throw Error::at(dir, 0, "no model.safetensors or model.safetensors.index.json");
}

}  // namespace

Llama load_llama(const std::string& dir, const LoadOptions& opt) {
  if (!fs::is_directory(dir))
    throw Error::at(dir, 0, "checkpoint directory does not exist (hint: set llm.dir)");
  LlamaConfig cfg = load_config(dir + "/config.json");
  Llama m(cfg);
  if (opt.random_init) {
    m->init_random(opt.seed);
    m->to(opt.device, opt.dtype);
    m->tie_weights();  // to() converts each parameter apart: tie lm_head to embed_tokens again
  } else {
    auto where = weight_files(dir);
    std::map<std::string, std::shared_ptr<io::SafetensorsFile>> files;
    std::set<std::string> used;
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters()) {
      const std::string& name = p.key();
      if (name == "lm_head.weight" && cfg.tie_word_embeddings) continue;  // shares embed_tokens
      auto it = where.find(name);
      if (it == where.end())
        throw Error::at(dir, 0, "tensor '" + name + "' is missing from the checkpoint");
      auto& f = files[it->second];
      if (!f) f = std::make_shared<io::SafetensorsFile>(it->second);
      const auto& info = f->info(name);
      if (!torch::IntArrayRef(info.shape).equals(p.value().sizes()))
        throw Error::at(it->second, 0, "tensor '" + name + "' has shape " +
                                           c10::str(torch::IntArrayRef(info.shape)) +
                                           ", config.json implies " + c10::str(p.value().sizes()));
      auto t = f->get(name, opt.dtype);  // aliases the mapping when no conversion is needed
      p.value().set_data(opt.device.is_cpu() ? t : t.to(opt.device));
      used.insert(name);
    }
    for (const auto& [name, file] : where)
      if (!used.count(name) && name.find("rotary_emb.inv_freq") == std::string::npos &&
          !(name == "lm_head.weight" && cfg.tie_word_embeddings))
        throw Error::at(file, 0, "unexpected tensor '" + name +
                                     "' (hint: not a LLaMA-family checkpoint, or a config.json "
                                     "that does not match the weights)");
    m->tie_weights();
  }
  m->freeze();
  m->eval();
  return m;
}

}  // namespace cora::llm
