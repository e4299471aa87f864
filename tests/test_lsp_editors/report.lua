-- Test only: wait for the diagnostics of the current buffer, write them
-- as JSON to $ACRN_SHM_NVIM_OUT and quit.
local got = vim.wait(60000, function()
  return #vim.diagnostic.get(0) > 0
end, 50)
local found = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  local lsp = (d.user_data or {}).lsp or {}
  table.insert(found, {
    lnum = d.lnum, col = d.col, severity = d.severity,
    message = d.message, source = d.source, code = d.code or lsp.code,
  })
end
local out = io.open(os.getenv("ACRN_SHM_NVIM_OUT"), "w")
out:write(vim.fn.json_encode({ waited = got, diagnostics = found }))
out:close()
vim.cmd("qa!")
