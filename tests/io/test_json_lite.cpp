#include <doctest/doctest.h>

#include <ctnn/io/json_lite.hpp>

#include <string>
#include <vector>

using namespace ctnn::io::json_lite;

namespace {

// Reads a document whose top level is an object of string values.
std::vector<std::pair<std::string, std::string>> read_string_map(std::string_view text) {
  Reader r(text, 3);
  r.begin_object();
  std::vector<std::pair<std::string, std::string>> out;
  std::string key;
  while (r.next_member(key)) out.emplace_back(key, r.read_string());
  r.finish();
  return out;
}

std::string error_of(std::string_view text) {
  try {
    read_string_map(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json_lite decodes every escape, including surrogate pairs") {
  const auto m = read_string_map(R"({"k": "\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000"})");
  REQUIRE(m.size() == 1);
  const std::string expected = std::string("\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") + '\0';
  CHECK(m[0].second == expected);
  // Raw UTF-8 passes through unchanged.
  CHECK(read_string_map("{\"\xc3\xa9\":\"\xf4\x8f\xbf\xbf\"}")[0].second == "\xf4\x8f\xbf\xbf");
}

TEST_CASE("json_lite refuses malformed strings") {
  CHECK(error_of(R"({"k":"\ud800"})").find("unpaired high surrogate") != std::string::npos);
  CHECK(error_of(R"({"k":"\ud800\ud800"})").find("unpaired high surrogate") != std::string::npos);
  CHECK(error_of(R"({"k":"\udfff"})").find("unpaired low surrogate") != std::string::npos);
  CHECK(error_of(R"({"k":"\U0041"})").find("invalid escape \\U") != std::string::npos);
  CHECK(error_of(R"({"k":"\u00"})").find("invalid hex digit '\"'") != std::string::npos);
  CHECK(error_of(R"({"k":"\u00)").find("truncated \\u escape") != std::string::npos);
  CHECK(error_of("{\"k\":\"a\tb\"}").find("unescaped control character") != std::string::npos);
  CHECK(error_of("{\"k\":'v'}").find("expected '\"'") != std::string::npos);
  CHECK(error_of("{\"k\":\"\xf5\x80\x80\x80\"}").find("invalid UTF-8 (at byte 6") != std::string::npos);
}

TEST_CASE("find_invalid_utf8 follows RFC 3629") {
  CHECK_FALSE(find_invalid_utf8("plain ascii"));
  CHECK_FALSE(find_invalid_utf8("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));
  CHECK(find_invalid_utf8("\xc1\xbf") == 0u);          // overlong 2-byte
  CHECK(find_invalid_utf8("a\xe0\x9f\xbf") == 1u);     // overlong 3-byte
  CHECK(find_invalid_utf8("ab\xed\xa0\x80") == 2u);    // UTF-16 surrogate
  CHECK(find_invalid_utf8("\xf0\x8f\xbf\xbf") == 0u);  // overlong 4-byte
  CHECK(find_invalid_utf8("\xf4\x90\x80\x80") == 0u);  // above U+10FFFF
  CHECK(find_invalid_utf8("x\x80") == 1u);             // lone continuation
  CHECK(find_invalid_utf8("\xe2\x82") == 0u);          // truncated
  CHECK(find_invalid_utf8("\xe2\x28\xa1") == 0u);      // bad continuation
}

TEST_CASE("json_lite integers: full u64 range, nothing else") {
  auto read_one = [](std::string_view text) {
    Reader r(text, 1);
    r.begin_array();
    REQUIRE(r.next_element());
    const auto v = r.read_u64();
    CHECK_FALSE(r.next_element());
    r.finish();
    return v;
  };
  CHECK(read_one("[0]") == 0u);
  CHECK(read_one(" [ 18446744073709551615 ] ") == UINT64_MAX);
  for (const char* bad : {"[18446744073709551616]", "[-0]", "[1.5]", "[1e2]", "[1E2]", "[00]", "[+1]", "[.5]", "[true]"}) {
    INFO(std::string(bad));
    CHECK_THROWS_AS(read_one(bad), ParseError);
  }
}

TEST_CASE("json_lite detects duplicate keys at every level and bounds depth") {
  CHECK(error_of(R"({"a":"1","b":"2","a":"3"})").find("duplicate key \"a\"") != std::string::npos);
  // Same key in sibling objects is fine; in one object it is not.
  Reader ok(R"([{"a":[1]},{"a":[2]}])", 3);
  ok.begin_array();
  std::string key;
  while (ok.next_element()) {
    ok.begin_object();
    while (ok.next_member(key)) {
      ok.begin_array();
      while (ok.next_element()) ok.read_u64();
    }
  }
  ok.finish();

  Reader dup(R"([{"a":[1],"a":[2]}])", 3);
  dup.begin_array();
  REQUIRE(dup.next_element());
  dup.begin_object();
  REQUIRE(dup.next_member(key));
  dup.begin_array();
  while (dup.next_element()) dup.read_u64();
  CHECK_THROWS_WITH_AS(dup.next_member(key), doctest::Contains("duplicate key \"a\""), ParseError);

  Reader deep("[[[[1]]]]", 3);
  deep.begin_array();
  REQUIRE(deep.next_element());
  deep.begin_array();
  REQUIRE(deep.next_element());
  deep.begin_array();
  REQUIRE(deep.next_element());
  CHECK_THROWS_WITH_AS(deep.begin_array(), doctest::Contains("nesting deeper than 3 levels"), ParseError);
}

TEST_CASE("json_lite structure errors name what was found") {
  CHECK(error_of(R"({"a":"1",})").find("trailing comma before '}'") != std::string::npos);
  CHECK(error_of(R"({"a":"1" "b":"2"})").find("expected ',' or '}', found a string") != std::string::npos);
  CHECK(error_of(R"({"a":"1"} {})").find("expected only whitespace after the top-level value, found an object") != std::string::npos);
  CHECK(error_of(R"({"a":"1"}   )") == "");  // trailing padding is allowed
  CHECK(error_of(" \t\r\n{}") == "");        // and so is leading whitespace
  CHECK(error_of(R"({1:"1"})").find("expected a string key or '}', found a number") != std::string::npos);
  CHECK(error_of(R"({"a":"1")").find("expected ',' or '}', found the end of the text") != std::string::npos);
  try {
    Reader r(R"({"a" : 5})", 3);
    r.begin_object();
    std::string key;
    REQUIRE(r.next_member(key));
    CHECK(r.peek() == Kind::number);
    r.fail("expected a string, found " + r.found());
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()) == "expected a string, found a number (at byte 7 of the JSON text)");
    CHECK(e.offset() == 7u);
  }
}
