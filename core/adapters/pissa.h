#pragma once
// PiSSA (Meng et al. 2024, arXiv 2404.02948) as PEFT's init_lora_weights =
// "pissa" / "pissa_niter_K": a LoRA whose A and B start as the top-r singular
// triplets of W (W ≈ U S Vt: A = sqrt(S / s) Vt, B = U sqrt(S / s)), with the
// frozen base replaced by the residual W - s B A, so training starts from the
// same function and adapts the principal directions. With pissa.randomized
// the triplets come from a randomized SVD with K = pissa.niter subspace
// iterations (torch's svd_lowrank with q = r; here seeded by the run's seed)
// instead of the exact one.
//
// The trained adapter is kept and exported as PEFT's
// path_initial_model_for_weight_conversion writes it: a plain LoRA of rank 2r
// relative to the original base, ΔW = s (B A - B0 A0) = s [B | -B0] [A; A0],
// with alpha doubled (times sqrt(2) with rsLoRA) so the scaling is unchanged,
// and the PiSSA config beside it (AdapterState::trained_as). PEFT's other,
// unconverted form (plain save_pretrained: A, B of rank r relative to the
// residual, init_lora_weights "pissa" / "pissa_niter_K") is the descriptor's
// own PEFT form: written from the halves of the kept one, and read onto the
// original base by redoing the exact SVD as PEFT's from_pretrained does
// (refused for "pissa_niter_K", whose residual cannot be reproduced).
#include <cstdint>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/lora.h"
#include "core/adapters/numerical_rank.h"
#include "core/adapters/variant.h"

namespace lwb {

class PissaLinear : public LoraLinear {
 public:
  PissaLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config);
  // Reads W, sets A, B from its top-r singular triplets and W to the residual.
  void initialize(Backend& backend, std::uint64_t seed) override;

 private:
  int niter_;  // < 0: exact SVD
};

// The r largest singular triplets of a row-major [rows, cols] matrix by a
// randomized SVD (Halko, Martinsson, Tropp 2011, as torch.svd_lowrank): a
// Gaussian sketch W Ω, niter subspace iterations, then the exact SVD of the
// small projection Qᵀ W.
SingularTriplets randomized_singular_triplets(const std::vector<double>& w, int rows, int cols, int r, int niter,
                                              std::uint64_t seed);

// Keeps every module's initial A0, B0 and turns the trained adapter into the
// rank-2r LoRA relative to the original base.
class PissaController : public VariantController {
 public:
  void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) override;
  void finish_adapter_state(AdapterState& state) const override;

 private:
  struct Initial {
    std::string module;  // hf name
    int in = 0, out = 0;
    std::vector<float> A0, B0;  // [r, in], [out, r]
  };
  std::vector<Initial> initial_;
};

// A PiSSA adapter (rank r, A, B) with its initial factors as the plain LoRA
// PEFT's conversion writes: A' = [A; A0] [2r, in], B' = [B | -B0] [out, 2r].
void convert_pissa_module(int r, int in, int out, const std::vector<float>& A0, const std::vector<float>& B0,
                          HostTensor& A, HostTensor& B);

const VariantDescriptor& pissa_variant();

}  // namespace lwb
