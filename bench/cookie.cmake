add_executable(cookie_benchmark ${CMAKE_CURRENT_LIST_DIR}/cookie_benchmark.cc)
target_link_libraries(cookie_benchmark PRIVATE cachefs_cookie
                      benchmark::benchmark)
