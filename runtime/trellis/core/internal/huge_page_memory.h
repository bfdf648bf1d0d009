// trellis/core/internal/huge_page_memory.h — memory for the run loop's large tables.
//
// With 100k tasks asleep, every timer's wake-up touches a random spot of the deadline heap
// and of its slot table; 4 KiB pages mean a TLB miss (a page walk, costly under
// virtualization) on most of those touches. Blocks of 2 MiB or more therefore come from an
// anonymous mapping, 2 MiB-aligned and advised MADV_HUGEPAGE, so that with transparent huge
// pages in "madvise" mode (Debian's default) each 2 MiB is one TLB entry. Smaller blocks come
// from operator new, aligned to a cache line. Where huge pages are unavailable the advice is
// ignored and the mapping behaves as ordinary memory.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>

namespace trellis::internal {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
inline constexpr std::size_t kCacheLineBytes = 64;

// bytes > 0. Throws std::bad_alloc. `huge_pages`: advise MADV_HUGEPAGE (blocks of 2 MiB or
// more). A huge page is resident as a whole from its first touch: a block that may stay
// mostly unused (the last slab of a growing pool) can ask for none.
inline void* allocate_table(std::size_t bytes, bool huge_pages = true) {
  if (bytes < kHugePageBytes) return ::operator new (bytes, std::align_val_t{kCacheLineBytes});
  const std::size_t rounded = (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  // Over-map by one huge page, then trim both ends to a 2 MiB-aligned block.
  const std::size_t mapped = rounded + kHugePageBytes;
  void* mapping =
      ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::bad_alloc();
  const auto begin = reinterpret_cast<std::uintptr_t>(mapping);
  const std::uintptr_t aligned = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > begin) ::munmap(mapping, aligned - begin);
  const std::uintptr_t end = begin + mapped;
  if (end > aligned + rounded) {
    ::munmap(reinterpret_cast<void*>(aligned + rounded), end - (aligned + rounded));
  }
  if (huge_pages) ::madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

// Releases a block from allocate_table(bytes), with the same bytes.
inline void free_table(void* block, std::size_t bytes) noexcept {
  if (bytes < kHugePageBytes) {
    ::operator delete (block, std::align_val_t{kCacheLineBytes});
    return;
  }
  ::munmap(block, (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1));
}

// An allocator for std::vector over allocate_table().
template <class T>
struct TableAllocator {
  using value_type = T;
  TableAllocator() = default;
  template <class U>
  TableAllocator(const TableAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_table(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { free_table(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const TableAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace trellis::internal
