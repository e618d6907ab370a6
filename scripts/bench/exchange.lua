-- RFC 8693 token exchange: a distinct RS256 subject token per request
-- (round-robin over BENCH_TOKENS, minted by `sts bench mint`), pool ci.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib.lua")

local prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
  .. "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&pool=ci&subject_token="

function request()
  return post(prefix .. next_token())
end
