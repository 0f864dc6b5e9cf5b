// Per-point color and per-pixel blending of the fused renderer of baked sequences, shared by the
// CPU (render_cpu.cpp) and CUDA (render_cuda.cu) backends. Coverage, projection and depth order
// come from peel_common.h, so the fused pass lists exactly the points the index pass lists.
//
// Per point (METHOD.md section 5): softmax of the baked blend logits of the S chosen cameras,
// the blended baked color, plus weight * tanh(SH(d)) with d the unit direction from the camera to
// the point, clipped to [0, 1]; the SH degree (0 to 3) is the caller's, given as its coefficient
// count (degree + 1)^2. Per pixel: front-to-back alpha compositing of the (at most L)
// covering discs in depth order, alpha = clip(sigma * (1 - d^2 / rho^2), 0, 1), as in
// compositing.py. The arithmetic is float32; the stored values may be half precision.
#pragma once

#include <math.h>

#include "peel_common.h"

namespace fourk4d {

// Most SH coefficients per color channel: (degree + 1)^2 for the highest degree, 3.
constexpr int kMaxShCoeffs = 16;
// Most source cameras the fused renderer blends per view.
constexpr int kMaxSources = 16;

// Whether `count` coefficients per channel are those of an SH degree 0 to 3: 1, 4, 9 or 16.
PEEL_HD bool valid_sh_coeffs(int64_t count) {
  return count == 1 || count == 4 || count == 9 || count == 16;
}

// Real SH basis b[0 .. count) for count = (degree + 1)^2 coefficients (degree 0 to 3), in the
// order and convention of heads.py (3DGS / gsplat).
PEEL_HD void sh_basis(float x, float y, float z, int count, float* b) {
  const float C0 = 0.28209479177387814f, C1 = 0.4886025119029199f;
  b[0] = C0;
  if (count <= 1) return;
  b[1] = -C1 * y;
  b[2] = C1 * z;
  b[3] = -C1 * x;
  if (count <= 4) return;
  const float xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z;
  b[4] = 1.0925484305920792f * xy;
  b[5] = -1.0925484305920792f * yz;
  b[6] = 0.31539156525252005f * (2.0f * zz - xx - yy);
  b[7] = -1.0925484305920792f * xz;
  b[8] = 0.5462742152960396f * (xx - yy);
  if (count <= 9) return;
  b[9] = -0.5900435899266435f * y * (3.0f * xx - yy);
  b[10] = 2.890611442640554f * xy * z;
  b[11] = -0.4570457994644658f * y * (4.0f * zz - xx - yy);
  b[12] = 0.3731763325901154f * z * (2.0f * zz - 3.0f * xx - 3.0f * yy);
  b[13] = -0.4570457994644658f * x * (4.0f * zz - xx - yy);
  b[14] = 1.445305721320277f * z * (xx - yy);
  b[15] = -0.5900435899266435f * x * (xx - 3.0f * yy);
}

PEEL_HD float clamp01(float a) { return fmin_(fmax_(a, 0.0f), 1.0f); }

// Color of baked point i seen from `center`.
//   ibr: [C, N, 4] per camera and point: rgb and blend logit;
//   sh:  [N, 3, sh_coeffs] SH coefficients, sh_coeffs = (degree + 1)^2 (valid_sh_coeffs);
//   sources: the S (<= kMaxSources) camera indices blended for this view.
template <typename scalar_t>
PEEL_HD void baked_point_color(int64_t i, int64_t n, const scalar_t* ibr, const scalar_t* sh,
                                int sh_coeffs, const int32_t* sources, int num_sources, float px,
                                float py, float pz, const float* center, float sh_weight,
                                float* rgb) {
  float logits[kMaxSources];
  float peak = -INFINITY;
  for (int s = 0; s < num_sources; ++s) {
    logits[s] = static_cast<float>(ibr[(static_cast<int64_t>(sources[s]) * n + i) * 4 + 3]);
    peak = fmax_(peak, logits[s]);
  }
  float total = 0.0f, r = 0.0f, g = 0.0f, b = 0.0f;
  for (int s = 0; s < num_sources; ++s) {
    const scalar_t* c = ibr + (static_cast<int64_t>(sources[s]) * n + i) * 4;
    const float w = expf(logits[s] - peak);
    total += w;
    r += w * static_cast<float>(c[0]);
    g += w * static_cast<float>(c[1]);
    b += w * static_cast<float>(c[2]);
  }
  float dx = px - center[0], dy = py - center[1], dz = pz - center[2];
  const float norm = fmax_(sqrtf(dx * dx + dy * dy + dz * dz), 1e-12f);
  dx /= norm;
  dy /= norm;
  dz /= norm;
  float basis[kMaxShCoeffs];
  sh_basis(dx, dy, dz, sh_coeffs, basis);
  const float blended[3] = {r / total, g / total, b / total};
  for (int ch = 0; ch < 3; ++ch) {
    const scalar_t* coeffs = sh + (i * 3 + ch) * sh_coeffs;
    float value = 0.0f;
    for (int k = 0; k < sh_coeffs; ++k) value += static_cast<float>(coeffs[k]) * basis[k];
    rgb[ch] = clamp01(blended[ch] + sh_weight * tanhf(value));
  }
}

// Running front-to-back blend of one pixel.
struct PixelBlend {
  float r, g, b;
  float accumulation;
  float depth;
  float transmittance;
};

PEEL_HD PixelBlend empty_blend() { return PixelBlend{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}; }

// Adds the next covering disc (in depth order) to a pixel: w = T * alpha, then T *= 1 - alpha.
PEEL_HD void blend_disc(PixelBlend& p, float dist2, float rho, float sigma, float r, float g,
                        float b, float depth) {
  const float alpha = disc_alpha(dist2, rho, sigma);
  const float w = p.transmittance * alpha;
  p.r += w * r;
  p.g += w * g;
  p.b += w * b;
  p.accumulation += w;
  p.depth += w * depth;
  p.transmittance *= 1.0f - alpha;
}

// Writes a finished pixel: rgb with (1 - accumulation) * background mixed in, accumulation, depth.
PEEL_HD void write_pixel(const PixelBlend& p, const float* background, float* rgb, float* acc,
                         float* depth) {
  const float rest = 1.0f - p.accumulation;
  rgb[0] = p.r + rest * background[0];
  rgb[1] = p.g + rest * background[1];
  rgb[2] = p.b + rest * background[2];
  *acc = p.accumulation;
  *depth = p.depth;
}

}  // namespace fourk4d
