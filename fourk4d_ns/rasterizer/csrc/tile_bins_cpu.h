// Screen-tile binning of projected discs for the CPU backends (index pass and fused renderer).
//
// 1. Project every point to a disc and count the 16x16 screen tiles its pixel rectangle touches.
// 2. Project again and write one entry (sort key, disc, payload) per touched tile into that tile's
//    list.
// 3. Per tile, in parallel: sort the list by (depth, index), then walk it near to far, handing each
//    disc to the pixels of its rectangle that it covers, until every pixel of the tile has seen L
//    covering discs. The work per pixel is bounded by the discs whose rectangle contains it, up to
//    the L-th covering one.
//
// Performance notes: entries carry a copy of their disc (and payload) so that the tile walk reads
// memory sequentially (point ids are spatially random; looking discs up by id misses the cache),
// and projecting twice is cheaper than storing and re-reading per-point results. Loops are
// scheduled dynamically so that a thread delayed by other load does not stall the rest.
#pragma once

#include <torch/extension.h>

#include <omp.h>

#include <algorithm>
#include <vector>

#include "host_common.h"

namespace fourk4d {

inline int cpu_threads() { return std::max(1, at::get_num_threads()); }

// A tile entry starts with the point's (depth, index) sort key and its disc: an Entry is any struct
// with members `key` (depth_index_key), `u`, `v` and `rho`, followed by what the backend needs.
template <typename Entry>
ProjectedDisc entry_disc(const Entry& e) {
  return ProjectedDisc{e.u, e.v, key_depth(e.key), e.rho};
}

// Scratch space for the entries of one backend, kept per thread between calls: re-touching fresh
// pages costs more than the work itself.
template <typename Entry>
std::vector<Entry>& entry_buffer() {
  thread_local std::vector<Entry> buffer;
  return buffer;
}

// Calls f(i, disc, tiles) for every point i that `disc_of(i, disc)` draws and whose disc touches a
// tile (disc_tiles), in parallel.
template <typename DiscOf, typename F>
void for_each_binned_point(int64_t n, const TileGrid& grid, DiscOf& disc_of, F f) {
#pragma omp parallel for num_threads(cpu_threads()) schedule(dynamic, 4096)
  for (int64_t i = 0; i < n; ++i) {
    ProjectedDisc d;
    PixelRect tiles;
    if (disc_of(i, d) && disc_tiles(d, grid.width, grid.height, tiles)) f(i, d, tiles);
  }
}

// Steps 1 and 2. `disc_of(i, disc)` projects point i and returns whether it is drawn;
// `entry_of(i, disc)` makes its tile entry. On return, tile t's entries are
// entries[tile_start[t] .. tile_start[t + 1]), unsorted.
template <typename Entry, typename DiscOf, typename EntryOf>
void bin_discs(int64_t n, const TileGrid& grid, DiscOf disc_of, EntryOf entry_of,
               std::vector<int64_t>& tile_start, std::vector<Entry>& entries) {
  const int64_t n_tiles = grid.count();
  tile_start.assign(n_tiles + 1, 0);
  auto count = [&](int64_t, const ProjectedDisc&, const PixelRect& t) {
    for (int ty = t.y0; ty <= t.y1; ++ty)
      for (int tx = t.x0; tx <= t.x1; ++tx) {
#pragma omp atomic
        tile_start[grid.tile(tx, ty) + 1]++;
      }
  };
  for_each_binned_point(n, grid, disc_of, count);
  for (int64_t t = 0; t < n_tiles; ++t) tile_start[t + 1] += tile_start[t];

  // The order inside a list is arbitrary here; the per-tile sort makes the result deterministic,
  // since (depth, index) keys are unique.
  entries.resize(tile_start[n_tiles]);
  std::vector<int64_t> cursor(tile_start.begin(), tile_start.end() - 1);
  auto place = [&](int64_t i, const ProjectedDisc& d, const PixelRect& t) {
    const Entry entry = entry_of(i, d);
    for (int ty = t.y0; ty <= t.y1; ++ty)
      for (int tx = t.x0; tx <= t.x1; ++tx) {
        int64_t slot;
#pragma omp atomic capture
        slot = cursor[grid.tile(tx, ty)]++;
        entries[slot] = entry;
      }
  };
  for_each_binned_point(n, grid, disc_of, place);
}

// Pixel window [x0, x1] x [y0, y1] of one tile.
struct TileWindow {
  int x0, y0, x1, y1;
  int pixels() const { return (x1 - x0 + 1) * (y1 - y0 + 1); }
  int local(int x, int y) const { return (y - y0) * kTileSize + (x - x0); }
};

// Step 3 for every tile, in parallel: sorts the tile's entries near to far, then
// `visit(window, x, y, layer, entry, disc, dist2)` receives the layer-th (0-based) covering disc of
// pixel (x, y), near to far; `end_tile(window, counts)` finishes the tile with the number of discs
// each pixel received. Each callable is invoked by the thread owning the tile.
template <typename Entry, typename Visit, typename EndTile>
void walk_tiles(const TileGrid& grid, int layers, const std::vector<int64_t>& tile_start,
                std::vector<Entry>& entries, Visit visit, EndTile end_tile) {
#pragma omp parallel for num_threads(cpu_threads()) schedule(dynamic, 1)
  for (int64_t t = 0; t < grid.count(); ++t) {
    Entry* begin = entries.data() + tile_start[t];
    Entry* end = entries.data() + tile_start[t + 1];
    std::sort(begin, end, [](const Entry& a, const Entry& b) { return a.key < b.key; });
    const int tx0 = static_cast<int>(t % grid.tiles_x) * kTileSize;
    const int ty0 = static_cast<int>(t / grid.tiles_x) * kTileSize;
    const TileWindow window{tx0, ty0, std::min(tx0 + kTileSize, grid.width) - 1,
                            std::min(ty0 + kTileSize, grid.height) - 1};
    int count[kTileSize * kTileSize] = {0};
    const int n_pixels = window.pixels();
    int n_full = 0;
    for (const Entry* e = begin; e != end && n_full < n_pixels; ++e) {
      const ProjectedDisc d = entry_disc(*e);
      const PixelRect r = disc_pixel_rect(d, grid.width, grid.height);
      const int x0 = std::max(r.x0, window.x0), x1 = std::min(r.x1, window.x1);
      const int y0 = std::max(r.y0, window.y0), y1 = std::min(r.y1, window.y1);
      for (int y = y0; y <= y1; ++y) {
        const float py = pixel_center(y);
        for (int x = x0; x <= x1; ++x) {
          int& c = count[window.local(x, y)];
          if (c >= layers) continue;
          const float dist2 = disc_dist2(d, pixel_center(x), py);
          if (!disc_covers(dist2, d.rho)) continue;
          visit(window, x, y, c, *e, d, dist2);
          if (++c == layers) ++n_full;
        }
      }
    }
    end_tile(window, count);
  }
}

}  // namespace fourk4d
