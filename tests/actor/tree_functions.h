// Actor functions for the tree-wide discovery tests (tree_discovery_test.cc, real processes,
// and sim_discovery_test.cc, a World): registered in tree_functions_test.cc.
//   "tree.hold_child"(Context&, name)      starts a child `name`, started(0), holds it until
//                                          cancelled
//   "tree.find_and_add"(name) -> int       find_actor(name).run<int>("add", 20, 22)
//   "tree.wait_and_add"(name) -> int       wait_for_actor(name).run<int>("add", 20, 22)
//   "tree.spawn_and_call"(child, function, name) -> int
//                                          starts `child` and returns its function(name)
//   "tree.is_registered"(name) -> bool     find_actor(name) does not throw ActorNotFound
//   "tree.fail_deep"(depth, message)       raises std::domain_error `depth` actors down
//   "tree.produce_then_fail"(Context&, n)  streams 0..n-1, then throws std::out_of_range
//   "tree.produce_mixed"(Context&)         streams "one", then 2, then closes
#pragma once
