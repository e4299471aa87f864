;; acrn-shm's language server for ACRN XMLs, through eglot.
(require 'eglot)
(add-to-list 'eglot-server-programs '(nxml-mode "acrn-shm" "lsp"))
(add-hook 'nxml-mode-hook #'eglot-ensure)
