// CPU backend of the fused renderer of baked sequences: per-point color (blend_common.h), then the
// tile binning of the index pass (tile_bins_cpu.h) with each pixel compositing its first L covering
// discs front to back as they arrive near to far. No index buffer is written.
#include "baked_checks.h"
#include "peel_cpu.h"
#include "tile_bins_cpu.h"

namespace {

using fourk4d::ProjectedDisc;

// One (tile, point) pair: sort key, disc, opacity scale and color.
struct BlendEntry {
  uint64_t key;
  float u, v, rho;
  float sigma, r, g, b;
};

template <typename scalar_t>
void render(const at::Tensor& xyz, const at::Tensor& radius, const at::Tensor& density,
            const at::Tensor& sh, const at::Tensor& ibr, const at::Tensor& sources,
            fourk4d::BakedRender& job, float near, float sh_weight, int layers) {
  const int64_t n = job.n;
  const scalar_t* p = xyz.data_ptr<scalar_t>();
  const scalar_t* rad = radius.data_ptr<scalar_t>();
  const scalar_t* sig = density.data_ptr<scalar_t>();
  const scalar_t* coeffs = sh.data_ptr<scalar_t>();
  const int sh_coeffs = job.sh_coeffs;
  const scalar_t* baked = ibr.data_ptr<scalar_t>();
  const int32_t* src = sources.data_ptr<int32_t>();
  const int num_sources = static_cast<int>(sources.numel());
  const fourk4d::PinholeCamera& cam = job.cam;
  const float* center = job.center;
  const fourk4d::TileGrid grid(static_cast<int>(job.rgb.size(1)),
                               static_cast<int>(job.rgb.size(0)));

  auto disc_of = [&](int64_t i, ProjectedDisc& d) {
    return fourk4d::project_disc(cam, static_cast<float>(p[3 * i]), static_cast<float>(p[3 * i + 1]),
                                 static_cast<float>(p[3 * i + 2]), static_cast<float>(rad[i]), near,
                                 d);
  };
  auto entry_of = [&](int64_t i, const ProjectedDisc& d) {
    float c[3];
    fourk4d::baked_point_color(i, n, baked, coeffs, sh_coeffs, src, num_sources,
                                static_cast<float>(p[3 * i]), static_cast<float>(p[3 * i + 1]),
                                static_cast<float>(p[3 * i + 2]), center, sh_weight, c);
    return BlendEntry{fourk4d::depth_index_key(d.depth, static_cast<int32_t>(i)),
                      d.u, d.v, d.rho, static_cast<float>(sig[i]), c[0], c[1], c[2]};
  };
  std::vector<int64_t> tile_start;
  std::vector<BlendEntry>& entries = fourk4d::entry_buffer<BlendEntry>();
  fourk4d::bin_discs(n, grid, disc_of, entry_of, tile_start, entries);

  float* rgb_out = job.rgb.data_ptr<float>();
  float* acc_out = job.acc.data_ptr<float>();
  float* depth_out = job.depth.data_ptr<float>();
  const float* background = job.background;
  const int W = grid.width;
  // Per-thread pixel state of the tile being walked.
  thread_local fourk4d::PixelBlend pixels[fourk4d::kTileSize * fourk4d::kTileSize];
  auto visit = [&](const fourk4d::TileWindow& w, int x, int y, int layer, const BlendEntry& e,
                   const ProjectedDisc& d, float dist2) {
    fourk4d::PixelBlend& px = pixels[w.local(x, y)];
    if (layer == 0) px = fourk4d::empty_blend();
    fourk4d::blend_disc(px, dist2, d.rho, e.sigma, e.r, e.g, e.b, d.depth);
  };
  auto end_tile = [&](const fourk4d::TileWindow& w, const int* count) {
    for (int y = w.y0; y <= w.y1; ++y)
      for (int x = w.x0; x <= w.x1; ++x) {
        const int64_t at = static_cast<int64_t>(y) * W + x;
        const int local = w.local(x, y);
        const fourk4d::PixelBlend px = count[local] > 0 ? pixels[local] : fourk4d::empty_blend();
        fourk4d::write_pixel(px, background, rgb_out + 3 * at, acc_out + at, depth_out + at);
      }
  };
  fourk4d::walk_tiles(grid, layers, tile_start, entries, visit, end_tile);
}

}  // namespace

std::vector<at::Tensor> render_baked_cpu(const at::Tensor& xyz, const at::Tensor& radius,
                                         const at::Tensor& density, const at::Tensor& sh,
                                         const at::Tensor& ibr, const at::Tensor& sources,
                                         const at::Tensor& camera, const at::Tensor& background,
                                         int64_t height, int64_t width, int64_t layers,
                                         double near, double sh_weight) {
  fourk4d::BakedRender job = fourk4d::prepare_baked_render(
      xyz, radius, density, sh, ibr, sources, camera, background, height, width, layers, near,
      at::kCPU);
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(xyz.scalar_type(), "render_baked_cpu", [&] {
    render<scalar_t>(xyz, radius, density, sh, ibr, sources, job, static_cast<float>(near),
                     static_cast<float>(sh_weight), static_cast<int>(layers));
  });
  return job.outputs();
}
