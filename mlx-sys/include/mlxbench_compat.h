/* Force-included (`-include`) into every mlx-c translation unit and into bindgen's parse.
 * It fills two gaps of mlx-c 0.7.0 on our toolchains without touching its sources:
 *  - GCC 12's libstdc++ has no std::format, which mlx-c's private/io.h calls;
 *  - mlx-c declares float16_t/bfloat16_t (and the four item/data functions that use them) only on
 *    Arm, while mlx-rs 0.33 uses them on every target. MLX's array::item<T>()/data<T>() only
 *    reinterpret the element bytes, so 16-bit storage types of the right size are enough. */
#ifndef MLXBENCH_COMPAT_H
#define MLXBENCH_COMPAT_H

#ifdef __cplusplus
#include <version>
#if !defined(__cpp_lib_format)
#define FMT_HEADER_ONLY
#include <fmt/format.h>
namespace std {
using fmt::format;
}
#endif
#endif

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
