// Host-side pieces every compiled backend uses: the camera read from tensors, the argument checks
// and the grid of screen tiles.
#pragma once

#include <torch/extension.h>

#include "peel_common.h"

namespace fourk4d {

// The pinhole camera of `camera`: K [3,3], R [3,3] (row major) and T [3] flattened into a float32
// CPU tensor of 21 values (projection.kernel_camera). Kernels take the camera by value, so it is
// read on the host and never copied to or from the device.
inline PinholeCamera make_camera(const at::Tensor& camera) {
  TORCH_CHECK(camera.device().is_cpu() && camera.scalar_type() == at::kFloat &&
                  camera.is_contiguous() && camera.numel() == 21,
              "camera must be a contiguous float32 CPU tensor of 21 values (K, R, T flattened), got ",
              camera.sizes(), " ", camera.scalar_type(), " on ", camera.device());
  const float* k = camera.data_ptr<float>();
  const float* r = k + 9;
  const float* t = k + 18;
  PinholeCamera cam;
  cam.fx = k[0];
  cam.cx = k[2];
  cam.fy = k[4];
  cam.cy = k[5];
  for (int i = 0; i < 9; ++i) cam.r[i] = r[i];
  for (int i = 0; i < 3; ++i) cam.t[i] = t[i];
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

// A contiguous tensor of `dtype` on `device` with `numel` elements (-1: any number).
inline void check_tensor(const at::Tensor& t, const char* name, at::DeviceType device,
                         at::ScalarType dtype, int64_t numel) {
  TORCH_CHECK(t.device().type() == device, name, " must be a ", c10::DeviceTypeName(device),
              " tensor");
  TORCH_CHECK(t.scalar_type() == dtype, name, " must have the dtype ", dtype);
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(numel < 0 || t.numel() == numel, name, " has ", t.numel(), " elements, expected ",
              numel);
}

// Positions xyz [N, 3] of at most 2^31 - 1 points (the kernels index points with int32); returns N.
inline int64_t check_positions(const at::Tensor& xyz) {
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be [N, 3]");
  const int64_t n = xyz.size(0);
  TORCH_CHECK(n < (int64_t{1} << 31), "at most 2^31 - 1 points are supported");
  return n;
}

// Arguments of the index pass: xyz [N, 3] and radius [N], float32 and contiguous on `device`, and
// the image sizes; returns N. (The camera is checked by make_camera.)
inline int64_t check_peel_inputs(const at::Tensor& xyz, const at::Tensor& radius, int64_t height,
                                 int64_t width, int64_t layers, double near,
                                 at::DeviceType device) {
  check_tensor(xyz, "xyz", device, at::kFloat, -1);
  const int64_t n = check_positions(xyz);
  check_tensor(radius, "radius", device, at::kFloat, n);
  check_render_sizes(height, width, layers, near);
  return n;
}

// Screen geometry of the tiles.
struct TileGrid {
  int width, height, tiles_x, tiles_y;
  TileGrid(int w, int h)
      : width(w), height(h), tiles_x((w + kTileSize - 1) / kTileSize),
        tiles_y((h + kTileSize - 1) / kTileSize) {}
  int64_t count() const { return static_cast<int64_t>(tiles_x) * tiles_y; }
  // Index of tile (tx, ty), row major.
  int64_t tile(int tx, int ty) const { return static_cast<int64_t>(ty) * tiles_x + tx; }
};

}  // namespace fourk4d
