-- RFC 6749 §4.4 client_credentials, scope read, HTTP Basic client
-- authentication from BENCH_AUTH. The body is the same every request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib.lua")

local body = "grant_type=client_credentials&scope=read"

function request()
  return post(body)
end
