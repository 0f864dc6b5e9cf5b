// Argument checks of the fused renderer, shared by the CPU and CUDA backends (host code only).
#pragma once

#include <torch/extension.h>

#include "blend_common.h"
#include "host_camera.h"

namespace fourk4d {

// Checks the baked per-point tensors (one dtype, float32 or float16, on `device`) and the camera,
// and returns the number of points. Shapes: xyz [N,3], radius [N], density [N], sh [N,3,B] with
// B = (degree + 1)^2 coefficients of an SH degree 0 to 3 (1, 4, 9 or 16; the kernels read B there),
// ibr [C,N,4], sources int32 [S] on the CPU with 0 <= s < C, K/R/T float32 [3,3]/[3,3]/[3] and
// background [3] (anywhere), and the image sizes (check_render_sizes).
inline int64_t check_baked_inputs(const at::Tensor& xyz, const at::Tensor& radius,
                                  const at::Tensor& density, const at::Tensor& sh,
                                  const at::Tensor& ibr, const at::Tensor& sources,
                                  const at::Tensor& K, const at::Tensor& R, const at::Tensor& T,
                                  const at::Tensor& background, int64_t height, int64_t width,
                                  int64_t layers, double near, at::DeviceType device) {
  check_render_sizes(height, width, layers, near);
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be [N, 3]");
  const int64_t n = xyz.size(0);
  TORCH_CHECK(n < (int64_t{1} << 31), "at most 2^31 - 1 points are supported");
  const auto dtype = xyz.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf, "baked tensors must be float32 or float16");
  const std::pair<const at::Tensor*, const char*> tensors[] = {
      {&xyz, "xyz"}, {&radius, "radius"}, {&density, "density"}, {&sh, "sh"}, {&ibr, "ibr"}};
  for (const auto& [t, name] : tensors) {
    TORCH_CHECK(t->device().type() == device, name, " is on the wrong device");
    TORCH_CHECK(t->scalar_type() == dtype, name, " must have the dtype of xyz");
    TORCH_CHECK(t->is_contiguous(), name, " must be contiguous");
  }
  TORCH_CHECK(radius.numel() == n && density.numel() == n, "radius and density must be [N]");
  TORCH_CHECK(sh.dim() == 3 && sh.size(0) == n && sh.size(1) == 3 && valid_sh_coeffs(sh.size(2)),
              "sh must be [N, 3, (degree + 1)^2] for an SH degree 0 to 3 (1, 4, 9 or 16 "
              "coefficients), got ", sh.sizes());
  TORCH_CHECK(ibr.dim() == 3 && ibr.size(1) == n && ibr.size(2) == 4, "ibr must be [C, N, 4]");
  TORCH_CHECK(sources.device().is_cpu() && sources.scalar_type() == at::kInt &&
                  sources.is_contiguous() && sources.dim() == 1,
              "sources must be a contiguous int32 CPU tensor [S]");
  const int64_t s = sources.numel();
  TORCH_CHECK(s >= 1 && s <= kMaxSources, "between 1 and ", kMaxSources, " sources, got ", s);
  const int32_t* src = sources.data_ptr<int32_t>();
  for (int64_t k = 0; k < s; ++k)
    TORCH_CHECK(src[k] >= 0 && src[k] < ibr.size(0), "source ", src[k], " out of range [0, ",
                ibr.size(0), ")");
  TORCH_CHECK(K.numel() == 9 && R.numel() == 9 && T.numel() == 3, "K, R must be 3x3 and T 3");
  TORCH_CHECK(background.numel() == 3, "background must have 3 values");
  return n;
}

}  // namespace fourk4d
