// Host-side pieces every compiled backend uses: the camera read from tensors and the size checks.
#pragma once

#include <torch/extension.h>

#include "peel_common.h"

namespace fourk4d {

// The pinhole camera of K [3,3], R [3,3] (row major) and T [3], on any device and in any float
// dtype; read on the host (a no-op copy for float32 CPU tensors).
inline PinholeCamera make_camera(const at::Tensor& K, const at::Tensor& R, const at::Tensor& T) {
  const auto k = K.to(at::kCPU, at::kFloat).contiguous();
  const auto r = R.to(at::kCPU, at::kFloat).contiguous();
  const auto t = T.to(at::kCPU, at::kFloat).contiguous();
  PinholeCamera cam;
  cam.fx = k.data_ptr<float>()[0];
  cam.cx = k.data_ptr<float>()[2];
  cam.fy = k.data_ptr<float>()[4];
  cam.cy = k.data_ptr<float>()[5];
  for (int i = 0; i < 9; ++i) cam.r[i] = r.data_ptr<float>()[i];
  for (int i = 0; i < 3; ++i) cam.t[i] = t.data_ptr<float>()[i];
  return cam;
}

// Camera center C = -R^T T.
inline void camera_center(const PinholeCamera& cam, float* c) {
  for (int j = 0; j < 3; ++j)
    c[j] = -(cam.r[0 + j] * cam.t[0] + cam.r[3 + j] * cam.t[1] + cam.r[6 + j] * cam.t[2]);
}

// Image size, layer count and near plane of a render call.
inline void check_render_sizes(int64_t height, int64_t width, int64_t layers, double near) {
  TORCH_CHECK(height > 0 && width > 0 && layers > 0, "height, width and layers must be positive");
  TORCH_CHECK(near > 0.0, "near must be positive");
}

}  // namespace fourk4d
