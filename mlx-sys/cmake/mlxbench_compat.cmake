# Included at the end of mlx-c's project() through CMAKE_PROJECT_INCLUDE (see mlx-sys/build.rs):
# force-includes our compat header into every mlx-c translation unit. Given as two list items,
# the path is quoted by CMake for the compiler, so a checkout under "My Code/" still builds.
if(NOT MLXBENCH_COMPAT_HEADER OR NOT EXISTS "${MLXBENCH_COMPAT_HEADER}")
  message(FATAL_ERROR "mlxbench: MLXBENCH_COMPAT_HEADER must name mlx-sys/include/mlxbench_compat.h (got '${MLXBENCH_COMPAT_HEADER}')")
endif()
add_compile_options(-include "${MLXBENCH_COMPAT_HEADER}")
