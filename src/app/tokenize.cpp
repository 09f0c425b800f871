// `cora tokenize`: a tokenizer's ids for lines of text (checks against other implementations).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cora/app/commands.h"
#include "cora/core/error.h"
#include "cora/text/tokenizer.h"

namespace cora::app {

int tokenize(const TokenizeArgs& a) {
  const std::string file = std::filesystem::is_directory(a.tokenizer)
                               ? text::Tokenizer::file_in(a.tokenizer)
                               : a.tokenizer;
  text::Tokenizer tok(file);
  std::ifstream in_file;
  if (!a.input.empty() && a.input != "-") {
    in_file.open(a.input, std::ios::binary);
    if (!in_file) throw Error::at(a.input, 0, "cannot open for reading");
  }
  std::istream& in = in_file.is_open() ? in_file : std::cin;
  std::string line, out;
  while (std::getline(in, line)) {
    auto ids = tok.encode(line);
    out.clear();
    for (size_t k = 0; k < ids.size(); ++k) out += (k ? "," : "") + std::to_string(ids[k]);
    if (a.decode) out += "\t" + tok.decode(ids);
    std::cout << out << '\n';
  }
  std::cout.flush();
  return 0;
}

}  // namespace cora::app
