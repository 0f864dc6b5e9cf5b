// Python bindings of the CUDA extension module.
#include "peel_cuda.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("peel_points", &peel_points_cuda, "K-layer depth peeling of point discs (CUDA)");
  m.def("render_baked", &render_baked_cuda,
        "Fused color, rasterization and compositing of baked points (CUDA)");
}
