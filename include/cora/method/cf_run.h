// A finished CF run as the frozen collaborative source of the LLM methods, and the
// representations a CF run exports.
#pragma once

#include <string>

#include "cora/cf/model.h"
#include "cora/data/split.h"

namespace cora::method {

/// A finished CF run's best model, frozen (no grad) and in eval mode, for `data`.
cf::CfModel load_cf_run(const std::string& run_dir, const data::Dataset& data,
                        const torch::Device& device);

/// Writes `item` [n_items, D] and, for table models (MF, LightGCN), `user` [n_users, D]; SASRec's
/// user representation depends on each row's history, so LLM methods get it from load_cf_run().
void export_representations(cf::CfModelImpl& model, const std::string& path);

}  // namespace cora::method
