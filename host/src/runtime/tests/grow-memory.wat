;; Grows its one memory (64 KiB pages) by the number of pages it is asked for, and returns
;; memory.grow's answer: the previous size in pages, or -1 if the growth was refused.
(module
  (memory 1)
  (func (export "run") (param $pages i32) (result i32)
    (memory.grow (local.get $pages))))
