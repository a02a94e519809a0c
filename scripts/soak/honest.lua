-- Honest clients: each connection is one account (tokens from `scanlab bench accounts`),
-- sending 64-byte messages to the next account, and now and then reading its queue.
local tokens, names = {}, {}
for line in io.lines(os.getenv("SOAK_TOKENS")) do
  local name, token = line:match("(%S+) (%S+)")
  names[#names + 1] = name
  tokens[#tokens + 1] = token
end
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
local n = 0
function request()
  n = n + 1
  local i = ((offset * 7 + n) % #tokens) + 1
  local to = names[(i % #names) + 1]
  local h = { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }
  if n % 5 == 0 then
    return wrk.format("GET", "/v1/queue", h)
  end
  local body = '{"group":"soak","recipients":["' .. to .. '"],"payload":"' .. string.rep("A", 88) .. '"}'
  return wrk.format("POST", "/v1/messages", h, body)
end
