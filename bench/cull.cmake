add_executable(culler_benchmark ${CMAKE_CURRENT_LIST_DIR}/culler_benchmark.cc)
target_link_libraries(culler_benchmark PRIVATE cachefs_culler
                      benchmark::benchmark)
