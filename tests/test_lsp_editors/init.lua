-- acrn-shm's language server for XML files (Neovim 0.7 and later).
vim.cmd("filetype on")
vim.api.nvim_create_autocmd("FileType", {
  pattern = "xml",
  callback = function(args)
    local client = vim.lsp.start_client({
      name = "acrn-shm",
      cmd = { "acrn-shm", "lsp" },
      root_dir = vim.fn.fnamemodify(args.file, ":p:h"),
    })
    vim.lsp.buf_attach_client(args.buf, client)
  end,
})
