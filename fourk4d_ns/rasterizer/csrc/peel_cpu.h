// Functions of the CPU extension module (bound in bindings_cpu.cpp).
#pragma once

#include <torch/extension.h>

#include <vector>

// Index pass: {idx [H,W,L] int32, depth [H,W,L] float32}; empty slots hold -1 / -1.
std::vector<at::Tensor> peel_points_cpu(const at::Tensor& xyz, const at::Tensor& radius,
                                        const at::Tensor& camera, int64_t height, int64_t width,
                                        int64_t layers, double near);

// Fused render of baked points: {rgb [H,W,3], accumulation [H,W,1], depth [H,W,1]} float32.
std::vector<at::Tensor> render_baked_cpu(const at::Tensor& xyz, const at::Tensor& radius,
                                         const at::Tensor& density, const at::Tensor& sh,
                                         const at::Tensor& ibr, const at::Tensor& sources,
                                         const at::Tensor& camera, const at::Tensor& background,
                                         int64_t height, int64_t width, int64_t layers,
                                         double near, double sh_weight);

// Threads the OpenMP loops use (torch's intra-op thread count).
int64_t omp_threads();
