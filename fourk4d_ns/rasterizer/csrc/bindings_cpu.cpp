// Python bindings of the CPU extension module.
#include "peel_cpu.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("peel_points", &peel_points_cpu, "K-layer depth peeling of point discs (CPU)");
  m.def("render_baked", &render_baked_cpu,
        "Fused color, rasterization and compositing of baked points (CPU)");
  m.def("omp_threads", &omp_threads, "OpenMP threads used by the CPU backend");
}
