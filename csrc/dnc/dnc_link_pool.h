// A small cache of the CPU link buffers ([B, N, N]: every step's new link L_t, and the one
// ∂L buffer of a backward), so that a training sequence does not page-fault its links in anew.
//
// Why: each training step allocates a fresh B·N² link (4 MB at B=16, N=256) and the backward
// frees them all. glibc gives blocks this large their own mmap, or trims the heap top once that
// much is free, so every sequence first-touches ~65 000 fresh zeroed 4 KB pages (measured: 67 681
// minor faults per 64-step sequence at B=16, N=256), which on some machines (the AMD EPYC VM of
// issue 19) costs more than the kernels. Raising glibc's thresholds with mallopt fixes that for
// the whole process and cannot be undone, so it is opt-in (DPBENCH_MALLOPT=1, dnc_cpu.cpp);
// this cache touches only the DNC's own buffers, mapped with mmap outside glibc's heap (so the
// blocks it keeps cannot fragment the heap of the models that run next): freed links go back to
// it, at most
// $DPBENCH_LINK_CACHE_MB (default 1024) of them are kept, the rest are freed, and
// torch.ops.dpbench.dnc_link_cache_release() empties it.
#pragma once
#include <ATen/ATen.h>

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dpbench_dnc {

class LinkCache {
 public:
  static LinkCache& get() {
    static LinkCache* cache = new LinkCache();  // never destroyed: tensors may outlive exit
    return *cache;
  }

  // An uninitialised contiguous tensor of `sizes` like `like` (CPU), from the cache if a block
  // of that size is free.
  at::Tensor empty(at::IntArrayRef sizes, const at::Tensor& like) {
    const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * like.element_size();
    void* ptr = take(bytes);
    return at::from_blob(
        ptr, sizes, [bytes](void* p) { LinkCache::get().give_back(p, bytes); },
        like.options());
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) munmap(p, bytes);
    free_.clear();
    cached_ = 0;
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  LinkCache() {
    const char* env = std::getenv("DPBENCH_LINK_CACHE_MB");
    cap_ = (env ? std::strtoull(env, nullptr, 10) : 1024ull) << 20;
  }

  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TORCH_CHECK(p != MAP_FAILED, "dnc: out of memory mapping a ", bytes, "-byte link buffer");
    return p;
  }

  void give_back(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= cap_) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    munmap(p, bytes);
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0, cap_ = 0;
};

}  // namespace dpbench_dnc
