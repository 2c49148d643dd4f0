#pragma once
// A disk that fills up on demand, without root or a small partition: the
// default SQLite VFS of this process with writes that fail with SQLITE_FULL
// while g_disk_full is set (as the unix VFS reports ENOSPC). Every Store
// opened after install_fillable_disk() uses it.
#include <sqlite3.h>

#include <atomic>

namespace lwb::test {

inline std::atomic<bool> g_disk_full{false};

// The unix VFS gives files of different kinds different method tables: each
// is copied once with its xWrite wrapped.
struct WrappedIo {
  const sqlite3_io_methods* real = nullptr;
  sqlite3_io_methods full{};
};
inline WrappedIo g_io[4];

template <int I>
int full_write(sqlite3_file* f, const void* data, int n, sqlite3_int64 offset) {
  return g_disk_full ? SQLITE_FULL : g_io[I].real->xWrite(f, data, n, offset);
}

inline int full_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  using WriteFn = int (*)(sqlite3_file*, const void*, int, sqlite3_int64);
  static constexpr WriteFn writes[4] = {full_write<0>, full_write<1>, full_write<2>, full_write<3>};
  auto* real = static_cast<sqlite3_vfs*>(vfs->pAppData);
  const int rc = real->xOpen(real, name, f, flags, out_flags);
  if (rc != SQLITE_OK || !f->pMethods) return rc;
  for (int i = 0; i < 4; ++i) {
    WrappedIo& w = g_io[i];
    if (!w.real) {
      w.real = f->pMethods;
      w.full = *f->pMethods;
      w.full.xWrite = writes[i];
    }
    if (w.real == f->pMethods) {
      f->pMethods = &w.full;
      break;
    }
  }
  return rc;
}

inline void install_fillable_disk() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    sqlite3_vfs v = *real;
    v.zName = "fillable";
    v.pAppData = real;
    v.xOpen = full_open;
    return v;
  }();
  sqlite3_vfs_register(&vfs, 1);
}

}  // namespace lwb::test
