;; Never returns: only the epoch deadline can stop it.
(module
  (func (export "run")
    (loop $forever (br $forever))))
