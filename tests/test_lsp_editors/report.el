;; Test only: connect eglot (eglot-ensure waits for a command, which
;; batch Emacs never runs), wait for the diagnostics of the buffer, print
;; them one a line (line, column, text) and quit.
(eglot '(nxml-mode) (cons 'transient default-directory) 'eglot-lsp-server
       '("acrn-shm" "lsp") "xml")
(let ((tries 0))
  (while (and (< tries 600) (null (flymake-diagnostics)))
    (accept-process-output nil 0.1)
    (flymake-start)
    (setq tries (1+ tries))))
(dolist (d (flymake-diagnostics))
  (princ (format "%d:%d: %s\n" (line-number-at-pos (flymake-diagnostic-beg d))
                 (save-excursion (goto-char (flymake-diagnostic-beg d))
                                 (current-column))
                 (flymake-diagnostic-text d))))
(kill-emacs 0)
