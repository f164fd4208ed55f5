;; Calls itself without end: each frame costs wasm stack until the stack limit traps.
(module
  (func $recurse (export "run") (param $depth i64) (result i64)
    (i64.add
      (call $recurse (i64.add (local.get $depth) (i64.const 1)))
      (local.get $depth))))
