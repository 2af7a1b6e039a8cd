/* Force-included (`-include`) into every mlx-c translation unit and into bindgen's parse.
 * It fills two gaps of mlx-c 0.7.0 on our toolchains without touching its sources:
 *  - mlx-c's private/io.h calls std::format, which GCC 12's libstdc++ lacks: header-only {fmt}
 *    stands in there, and only where the standard library has no usable std::format;
 *  - mlx-c declares float16_t/bfloat16_t (and the four item/data functions that use them) only on
 *    Arm, while mlx-rs 0.33 uses them on every target. MLX's array::item<T>()/data<T>() only
 *    reinterpret the element bytes, so 16-bit storage types of the right size are enough.
 *  - MLX 0.32.3 inserted `global_scale` before `sorted_indices` in mlx::core::gather_qmm; mlx-c
 *    0.7.0 passes its arguments positionally, so an overload with the old signature forwards to
 *    the new one (the new one is not viable for mlx-c's call: no ambiguity).
 * .ci/check-libcxx compiles every mlx-c translation unit with this header under libc++ 16 (the
 * generation of Apple clang 15/16) and libc++ 19, with no {fmt} in sight, and against the
 * headers of every MLX version mlxbench builds against (mlx-sys/wheel.rs, MLX_VERSIONS). */
#ifndef MLXBENCH_COMPAT_H
#define MLXBENCH_COMPAT_H

#ifdef __cplusplus
#if defined(__has_include)
#if __has_include(<format>)
#include <format>
#endif
#endif

/* Whether <format> gave us std::format. The feature-test macro alone does not tell: LLVM libc++
 * defines __cpp_lib_format only from 19, although 17 and 18 ship a complete <format>, and 15 and
 * 16 ship it when experimental features are on (-fexperimental-library; Apple's libc++ of Xcode
 * 15/16 has it on). Testing for the macro alone sent Apple clang to {fmt}, which a Mac does not
 * have, and where it does, `using fmt::format` in std made every call ambiguous. */
#if defined(__cpp_lib_format)
#define MLXBENCH_HAS_STD_FORMAT 1
#elif defined(_LIBCPP_VERSION) && __cplusplus >= 202002L
#if _LIBCPP_VERSION >= 170000 || \
    (_LIBCPP_VERSION >= 150000 && !defined(_LIBCPP_HAS_NO_INCOMPLETE_FORMAT))
#define MLXBENCH_HAS_STD_FORMAT 1
#endif
#endif

#if !defined(MLXBENCH_HAS_STD_FORMAT)
#if defined(__has_include) && __has_include(<fmt/format.h>)
#define FMT_HEADER_ONLY
#include <fmt/format.h>
namespace std {
using fmt::format;
}
#else
#error "mlxbench: mlx-c calls std::format, which this C++ standard library does not provide, and no {fmt} headers were found to stand in. Use a compiler with C++20 <format> (GCC >= 13, Apple clang >= 15 from Xcode 15, LLVM libc++ >= 17), or install fmt (Debian/Ubuntu: apt-get install libfmt-dev; Fedora: dnf install fmt-devel)."
#endif
#endif

#if defined(__has_include)
#if __has_include(<mlx/version.h>)
#include <mlx/version.h>
#if MLX_VERSION_NUMERIC >= 32003
#include <mlx/ops.h>
namespace mlx::core {
/* mlx-c 0.7.0's call, from before 0.32.3's `global_scale`. */
inline array gather_qmm(
    const array& x,
    const array& w,
    const array& scales,
    const std::optional<array>& biases,
    std::optional<array> lhs_indices,
    std::optional<array> rhs_indices,
    bool transpose,
    std::optional<int> group_size,
    std::optional<int> bits,
    const std::string& mode,
    bool sorted_indices,
    StreamOrDevice s) {
  return gather_qmm(
      x, w, scales, biases, std::move(lhs_indices), std::move(rhs_indices), transpose, group_size,
      bits, mode, std::nullopt, sorted_indices, s);
}
} // namespace mlx::core
#endif
#endif
#endif
#endif /* __cplusplus */

#if !defined(__aarch64__) && !defined(__ARM_FEATURE_FP16_SCALAR_ARITHMETIC) && \
    !defined(__ARM_FEATURE_BF16)
#include <stdint.h>
#define HAS_FLOAT16
#define HAS_BFLOAT16
/* Layouts mlx-rs expects from bindgen: float16_t a one-field struct over u16, bfloat16_t a u16. */
typedef struct {
  uint16_t bits;
} float16_t;
typedef uint16_t bfloat16_t;
#endif

#endif
