# io layer: ReadToIter against a plain pread O_DIRECT loop over a 1 GiB file
# (in $CACHEFS_BENCH_DIR, default /var/tmp, kept for reuse).
add_executable(io_benchmark ${CMAKE_CURRENT_LIST_DIR}/io_benchmark.cc)
target_link_libraries(io_benchmark PRIVATE cachefs_io benchmark::benchmark)
