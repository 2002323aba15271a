# Content map queries, updates and record codec (bench/contentmap_benchmark.cc).
add_executable(contentmap_benchmark
  ${CMAKE_CURRENT_LIST_DIR}/contentmap_benchmark.cc)
target_link_libraries(contentmap_benchmark
  PRIVATE benchmark::benchmark cachefs_contentmap)
