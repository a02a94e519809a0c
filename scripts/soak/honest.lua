-- Honest clients, as the real client behaves: each wrk thread holds one connection and one
-- account (tokens from `scanlab bench accounts`; run with -t N -c N). It sends 64-byte
-- messages to the next account, reads its queue every fifth request, and acknowledges what
-- it read with the next request, so its queue stays short as a real client's does.
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
local n, unacked = 0, nil
function request()
  n = n + 1
  local i = (offset % #tokens) + 1
  local h = { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }
  if unacked then
    local body = '{"ids":[' .. unacked .. ']}'
    unacked = nil
    return wrk.format("POST", "/v1/queue/ack", h, body)
  end
  if n % 5 == 0 then
    return wrk.format("GET", "/v1/queue", h)
  end
  local to = names[(i % #names) + 1]
  local body = '{"group":"soak","recipients":["' .. to .. '"],"payload":"' .. string.rep("A", 88) .. '"}'
  return wrk.format("POST", "/v1/messages", h, body)
end
function response(status, headers, body)
  if body:sub(1, 12) == '{"messages":' then
    local ids = {}
    for id in body:gmatch('"id":(%d+)') do ids[#ids + 1] = id end
    if #ids > 0 then unacked = table.concat(ids, ",") end
  end
end
