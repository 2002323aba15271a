#include "io/json_string.h"

#include <string>

#include "gtest/gtest.h"

namespace cachefs {
namespace {

TEST(JsonStringTest, QuotesWhatJsonMustNotSeeBare) {
  EXPECT_EQ(JsonString("plain name"), "\"plain name\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("line\nnext\ttab"), "\"line\\nnext\\ttab\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
}

TEST(JsonStringTest, EveryByteComesBackThroughTheParser) {
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string object =
      "{\"name\": " + JsonString(all) + ", \"n\": 42, \"t\": true}";
  auto members = ParseFlatJsonObject(object);
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].first, "name");
  EXPECT_EQ((*members)[0].second, all);
  EXPECT_EQ((*members)[1], std::make_pair(std::string("n"), std::string("42")));
  EXPECT_EQ((*members)[2].second, "true");
}

TEST(JsonStringTest, AnEmptyObjectHasNoMembers) {
  auto members = ParseFlatJsonObject(" {} \n");
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_TRUE(members->empty());
}

TEST(JsonStringTest, WhatIsNotOneFlatObjectIsRefused) {
  for (const char* bad :
       {"", "[1, 2]", "{\"a\": {\"b\": 1}}", "{\"a\": [1]}", "{\"a\": 1",
        "{\"a\" 1}", "{\"a\": \"cut}", "{a: 1}", "{\"a\": \"\\u0100\"}"}) {
    EXPECT_FALSE(ParseFlatJsonObject(bad).ok()) << bad;
  }
}

TEST(JsonStringTest, NestedValuesParse) {
  auto value = ParseJson(
      "{\"job\": 3, \"paths\": [\"a b\", \"c\"], \"errors\": [{\"path\": "
      "\"x\\ny\", \"error\": null}], \"ok\": false, \"n\": -1.5e3}\n");
  ASSERT_TRUE(value.ok()) << value.status();
  ASSERT_EQ(value->kind, JsonValue::Kind::kObject);
  EXPECT_EQ(value->Find("job")->text, "3");
  EXPECT_EQ(value->Find("job")->kind, JsonValue::Kind::kNumber);
  const JsonValue* paths = value->Find("paths");
  ASSERT_NE(paths, nullptr);
  ASSERT_EQ(paths->items.size(), 2u);
  EXPECT_EQ(paths->items[0].text, "a b");
  const JsonValue* errors = value->Find("errors");
  ASSERT_EQ(errors->items.size(), 1u);
  EXPECT_EQ(errors->items[0].Find("path")->text, "x\ny");
  EXPECT_EQ(errors->items[0].Find("error")->kind, JsonValue::Kind::kNull);
  EXPECT_EQ(value->Find("ok")->kind, JsonValue::Kind::kBool);
  EXPECT_EQ(value->Find("n")->text, "-1.5e3");
  EXPECT_EQ(value->Find("missing"), nullptr);
  ASSERT_TRUE(ParseJson("[]").ok());
  EXPECT_TRUE(ParseJson("[]")->items.empty());
}

TEST(JsonStringTest, WhatIsNotJsonIsRefused) {
  for (const char* bad : {"", "[1, 2", "{\"a\": [1,]}", "{\"a\": 1} x",
                          "[nope]", "{\"a\": 1,}", "[[[[", "{1: 2}"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cachefs
