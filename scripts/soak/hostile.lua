-- Hostile clients, mixed: junk uploads with bad tokens (1 MiB each), challenge floods for the
-- honest accounts' names, forged logins, malformed JSON, and bad-token reads.
local junk = string.rep("x", 1 << 20)
local n = 0
function request()
  n = n + 1
  local k = n % 5
  if k == 0 then
    return wrk.format("PUT", "/v1/blobs", { ["Authorization"] = "Bearer junk" }, junk)
  elseif k == 1 then
    return wrk.format("POST", "/v1/auth/challenge", { ["Content-Type"] = "application/json" },
      '{"name":"soak' .. (n % 32) .. '"}')
  elseif k == 2 then
    return wrk.format("POST", "/v1/auth/token", { ["Content-Type"] = "application/json" },
      '{"name":"soak' .. (n % 32) .. '","nonce":"' .. string.rep("0", 64) .. '","signature":"' .. string.rep("0", 128) .. '"}')
  elseif k == 3 then
    return wrk.format("POST", "/v1/register", { ["Content-Type"] = "application/json" }, "{not json")
  else
    return wrk.format("GET", "/v1/queue", { ["Authorization"] = "Bearer nope" })
  end
end
