// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// A minimal JSON reader for the integration tests: enough for the data
// plane's stats file and DPDK telemetry replies.  Numbers are kept as the
// text that was written, so 64- and 128-bit counters compare exactly
// without going through a double.  Not a validating parser for arbitrary
// input: it accepts what RFC 8259 allows and rejects what it does not
// understand, which is all a test needs to notice a broken writer.
#ifndef AMIL_TESTS_INTEGRATION_JSON_H
#define AMIL_TESTS_INTEGRATION_JSON_H

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace itest {

struct Json {
	enum Type { NUL, BOOL, NUM, STR, ARR, OBJ } type = NUL;
	std::string text;  // NUM: the literal; STR: the decoded string; BOOL: true/false
	std::vector<Json> arr;
	std::vector<std::pair<std::string, Json>> obj;

	// Member @key of an object, or nullptr.
	const Json *get(const std::string &key) const
	{
		if (type != OBJ)
			return nullptr;
		for (const auto &kv : obj)
			if (kv.first == key)
				return &kv.second;
		return nullptr;
	}

	// Follow a dot-separated path; array elements by decimal index
	// ("workers.0.rx").  Keys containing dots cannot be addressed.
	const Json *path(const std::string &p) const
	{
		const Json *j = this;
		size_t start = 0;

		while (j != nullptr && start <= p.size()) {
			size_t dot = p.find('.', start);
			std::string part = p.substr(start, dot == std::string::npos ? std::string::npos
										 : dot - start);

			if (j->type == ARR) {
				char *end;
				unsigned long i = std::strtoul(part.c_str(), &end, 10);

				j = (*end == '\0' && !part.empty() && i < j->arr.size()) ? &j->arr[i]
											 : nullptr;
			} else {
				j = j->get(part);
			}
			if (dot == std::string::npos)
				break;
			start = dot + 1;
		}
		return j;
	}
};

class JsonParser {
public:
	// Parse @s into @out; on failure returns false with a message in @err.
	static bool parse(const std::string &s, Json *out, std::string *err)
	{
		JsonParser p(s);

		if (!p.value(out, 0) || (p.ws(), p.i_ != s.size())) {
			if (err != nullptr)
				*err = "JSON error at byte " + std::to_string(p.i_) + " of " +
				       std::to_string(s.size());
			return false;
		}
		return true;
	}

private:
	explicit JsonParser(const std::string &s) : s_(s) {}

	void ws()
	{
		while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' ||
					  s_[i_] == '\r'))
			i_++;
	}
	bool lit(const char *w)
	{
		size_t n = std::char_traits<char>::length(w);

		if (s_.compare(i_, n, w) != 0)
			return false;
		i_ += n;
		return true;
	}
	bool string(std::string *out)
	{
		if (i_ >= s_.size() || s_[i_] != '"')
			return false;
		i_++;
		out->clear();
		while (i_ < s_.size() && s_[i_] != '"') {
			char c = s_[i_++];

			if ((unsigned char)c < 0x20)
				return false;
			if (c == '\\') {
				if (i_ >= s_.size())
					return false;
				c = s_[i_++];
				switch (c) {
				case '"': case '\\': case '/': break;
				case 'b': c = '\b'; break;
				case 'f': c = '\f'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'u':
					// Only ASCII names are expected; keep a marker.
					if (i_ + 4 > s_.size())
						return false;
					i_ += 4;
					c = '?';
					break;
				default:
					return false;
				}
			}
			out->push_back(c);
		}
		if (i_ >= s_.size())
			return false;
		i_++;
		return true;
	}
	bool number(std::string *out)
	{
		size_t b = i_;

		if (i_ < s_.size() && s_[i_] == '-')
			i_++;
		if (i_ >= s_.size() || !std::isdigit((unsigned char)s_[i_]))
			return false;
		while (i_ < s_.size() &&
		       (std::isdigit((unsigned char)s_[i_]) || s_[i_] == '.' || s_[i_] == 'e' ||
			s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
			i_++;
		*out = s_.substr(b, i_ - b);
		return true;
	}
	bool value(Json *out, int depth)
	{
		if (depth > 32)
			return false;
		ws();
		if (i_ >= s_.size())
			return false;
		switch (s_[i_]) {
		case '{':
			out->type = Json::OBJ;
			i_++;
			ws();
			if (i_ < s_.size() && s_[i_] == '}')
				return i_++, true;
			for (;;) {
				std::pair<std::string, Json> kv;

				ws();
				if (!string(&kv.first))
					return false;
				ws();
				if (i_ >= s_.size() || s_[i_++] != ':')
					return false;
				if (!value(&kv.second, depth + 1))
					return false;
				out->obj.push_back(std::move(kv));
				ws();
				if (i_ < s_.size() && s_[i_] == ',') {
					i_++;
					continue;
				}
				return i_ < s_.size() && s_[i_++] == '}';
			}
		case '[':
			out->type = Json::ARR;
			i_++;
			ws();
			if (i_ < s_.size() && s_[i_] == ']')
				return i_++, true;
			for (;;) {
				Json v;

				if (!value(&v, depth + 1))
					return false;
				out->arr.push_back(std::move(v));
				ws();
				if (i_ < s_.size() && s_[i_] == ',') {
					i_++;
					continue;
				}
				return i_ < s_.size() && s_[i_++] == ']';
			}
		case '"':
			out->type = Json::STR;
			return string(&out->text);
		case 't':
			out->type = Json::BOOL;
			out->text = "true";
			return lit("true");
		case 'f':
			out->type = Json::BOOL;
			out->text = "false";
			return lit("false");
		case 'n':
			out->type = Json::NUL;
			return lit("null");
		default:
			out->type = Json::NUM;
			return number(&out->text);
		}
	}

	const std::string &s_;
	size_t i_ = 0;
};

}  // namespace itest

#endif
