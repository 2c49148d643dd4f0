#pragma once
// Merging several trained adapters into one LoRA adapter with weights, in the
// four ways users know from LoRAHub and PEFT's add_weighted_adapter:
//
//   lorahub  A = Σ wᵢAᵢ, B = Σ wᵢBᵢ (summed separately, so ΔW has cross terms);
//            members need identical targets, ranks and scaling; the result
//            keeps their config.
//   linear   A = Σ sign(wᵢsᵢ)·√|wᵢsᵢ|·Aᵢ, B = Σ √|wᵢsᵢ|·Bᵢ, scaling 1 (alpha = r);
//            identical targets and ranks.
//   cat      A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …]: exactly ΔW = Σ wᵢsᵢBᵢAᵢ,
//            rank Σ rᵢ, scaling 1; any targets (the union) and ranks.
//   svd      the truncated SVD of Σ wᵢsᵢBᵢAᵢ per module to a chosen rank
//            (B = U·S, A = Vᵀ as PEFT does), scaling 1; any targets and ranks.
//
// Members are taken in the LoRA form their variant gives (A, B, s; the
// descriptor's lora_form): LoRA, rsLoRA and ReLoRA adapters as they are;
// AdaLoRA as B·diag(E)·A with s = alpha / (init_r + 1e-5), so pruned triplets
// (E = 0) drop out. Variants without one (DoRA, whose magnitude vectors
// rescale W + sBA row by row) are refused, with their descriptor's reason.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/descriptor.h"
#include "core/common/errors.h"

namespace lwb::compose {

enum class MergeMode : std::uint8_t { LoraHub, Linear, Cat, Svd };
const char* merge_mode_name(MergeMode m);  // "lorahub", "linear", "cat", "svd"
// ConfigError("compose.mode", ...) for anything else.
MergeMode parse_merge_mode(const std::string& s);

struct Member {
  std::string name;  // the adapter's name in the library, for messages
  AdapterState state;
};

// A member that cannot join: different base model, shape, targets or rank
// where the mode needs them equal, a DoRA adapter, ... what() reads
// `adapter "NAME" cannot be composed: REASON`.
class IncompatibleMemberError : public Error {
 public:
  IncompatibleMemberError(std::string adapter, std::string reason);
  const std::string& adapter() const { return adapter_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string adapter_, reason_;
};

// Throws IncompatibleMemberError for the first member that cannot be merged
// with the others in this mode (the first member is the reference), and
// ConfigError for an empty list. Lets the window refuse a drop before it
// builds anything.
void check_members(std::span<const Member> members, MergeMode mode);

// One module of an adapter in LoRA form: ΔW = scaling · B · A. rank 0 when
// the adapter does not adapt the module. FormatError naming the adapter and key when a tensor is missing or has a
// shape its config does not imply.
LoraFactors lora_factors(const AdapterState& adapter, const std::string& adapter_name, int layer, Target target);

// Turns the members into LoRA form once and composes them for any weights.
class Composer {
 public:
  // svd_rank: the rank of an "svd" merge, 0 for the largest member rank;
  // ConfigError("compose.svd_rank", ...) if it exceeds a module's min(in, out).
  Composer(std::vector<Member> members, MergeMode mode, int svd_rank = 0);

  MergeMode mode() const { return mode_; }
  std::size_t size() const { return members_.size(); }
  const Member& member(std::size_t i) const { return members_[i]; }
  // The merged adapter's config (a plain LoRA); every compose() result has it.
  const AdapterConfig& result_config() const { return result_.config; }

  // The merged adapter for one weight per member. The result lives in this
  // Composer and is overwritten in place by the next call (no reallocation:
  // the weight search calls this once per evaluation).
  const AdapterState& compose(std::span<const double> weights);

 private:
  struct Module {
    std::string name;  // "model.layers.0.self_attn.q_proj"
    int in = 0, out = 0;
    std::vector<LoraFactors> members;  // never rank 0 (zeros stand in)
    std::string key_A, key_B;          // the result's tensors
  };

  void compose_module(const Module& m, std::span<const double> w);

  std::vector<Member> members_;
  MergeMode mode_;
  int rank_ = 0;  // of the result
  std::vector<Module> modules_;
  AdapterState result_;
};

// Σ wᵢsᵢBᵢAᵢ of one module as a dense row-major [out, in] matrix, straight
// from the members (for tests and for checking merges).
std::vector<double> dense_delta(std::span<const Member> members, std::span<const double> weights,
                                const std::string& module);
// The same for a single adapter: s·B·A of its LoRA form.
std::vector<double> dense_delta(const AdapterState& adapter, const std::string& module);

}  // namespace lwb::compose
