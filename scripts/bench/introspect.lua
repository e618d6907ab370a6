-- RFC 7662 introspection of our own access tokens (round-robin over
-- BENCH_TOKENS, from `sts bench fetch-tokens`), HTTP Basic client
-- authentication from BENCH_AUTH. Run with BENCH_CHECK='"active":true'.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib.lua")

function request()
  return post("token=" .. next_token())
end
