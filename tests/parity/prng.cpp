// The fixture PRNG against published constants and against values numpy
// produced (tests/parity/make_fixtures.py), so a drift in either
// implementation shows up here, not as an unexplained parity failure.
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cstdint>
#include <vector>

#include "fixture_rng.hpp"

using namespace ctnn::test;

TEST_CASE("fixture PRNG: FNV-1a 64 matches the published test vectors") {
  static_assert(fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ull);
}

TEST_CASE("fixture PRNG: splitmix64 from state 0 matches the reference sequence") {
  // Vigna's splitmix64.c seeded with 0.
  constexpr std::array<std::uint64_t, 4> want{0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full,
                                              0xf88bb8a8724c81ecull};
  for (std::uint64_t i = 0; i < want.size(); ++i) CHECK(splitmix64_at(0, i) == want[i]);
}

TEST_CASE("fixture PRNG: weights and images agree with numpy bit for bit") {
  const std::array<std::size_t, 4> shape{128, 64, 1, 1};
  std::vector<float> w(128 * 64);
  fill_weight("layer2.0.downsample.0.weight", shape, w);
  CHECK(std::bit_cast<std::uint32_t>(w[0]) == 0xbd8947b6u);
  CHECK(std::bit_cast<std::uint32_t>(w[1]) == 0x3de58429u);
  CHECK(std::bit_cast<std::uint32_t>(w[4095]) == 0xbe9ae0d0u);
  CHECK(std::bit_cast<std::uint32_t>(w[8191]) == 0xbe73d86cu);
  // He-uniform bound sqrt(6 / 64).
  for (float v : w) REQUIRE(std::abs(v) <= 0.30619f);

  std::vector<float> x(2 * 3 * 224 * 224);
  fill_image("input", 2, 3, 224, 224, x);
  CHECK(std::bit_cast<std::uint32_t>(x[0]) == 0x3f91b233u);
  CHECK(std::bit_cast<std::uint32_t>(x[1]) == 0x4025a920u);
  CHECK(std::bit_cast<std::uint32_t>(x[150527]) == 0xbfc54316u);
  CHECK(std::bit_cast<std::uint32_t>(x[301055]) == 0xbff9dbb6u);
}

TEST_CASE("fixture PRNG: rank below 2 and size mismatches are refused") {
  std::vector<float> b(10);
  const std::array<std::size_t, 1> r1{10};
  CHECK_THROWS_WITH_AS(fill_weight("fc.bias", r1, b), doctest::Contains("rank 1"), std::invalid_argument);
  const std::array<std::size_t, 2> r2{3, 4};
  CHECK_THROWS_WITH_AS(fill_weight("fc.weight", r2, b), doctest::Contains("12 elements"), std::invalid_argument);
}
