# Installs the build tree into a fresh prefix, then configures, builds and runs a tiny
# downstream project that finds it with find_package(trellis CONFIG REQUIRED). Proves the
# package config, the exported targets and the installed headers work together.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${TRELLIS_BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${result}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE_DIR} -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "configuring the downstream project failed: ${result}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "building the downstream project failed: ${result}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/downstream RESULT_VARIABLE result
                OUTPUT_VARIABLE output)
message(STATUS "${output}")
if(NOT result EQUAL 0 OR NOT output MATCHES "downstream ok: 6")
  message(FATAL_ERROR "the downstream program failed: ${result}")
endif()
