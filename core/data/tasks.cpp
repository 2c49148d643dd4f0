#include "core/data/tasks.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "core/common/errors.h"
#include "core/tensor/rng.h"

namespace lwb::data {

namespace {

constexpr const char* kWords[] = {
    "apple",  "river",  "stone",  "cloud",  "green",  "house",  "light",  "music",  "paper",  "water",  "table",
    "chair",  "plant",  "bread",  "clock",  "dream",  "earth",  "field",  "glass",  "heart",  "horse",  "juice",
    "knife",  "lemon",  "money",  "night",  "ocean",  "party",  "queen",  "radio",  "sheep",  "tiger",  "uncle",
    "voice",  "whale",  "youth",  "zebra",  "angle",  "beach",  "candy",  "dance",  "eagle",  "flame",  "grape",
    "honey",  "image",  "jelly",  "koala",  "lunar",  "maple",  "nurse",  "olive",  "piano",  "quiet",  "robin",
    "salad",  "train",  "urban",  "vivid",  "wheat",  "yacht",  "amber",  "brick",  "coral",  "daisy",  "ember",
    "frost",  "ghost",  "hazel",  "ivory",  "jewel",  "karma",  "lilac",  "mango",  "noble",  "orbit",  "pearl",
    "quilt",  "raven",  "spice",  "tulip",  "ultra",  "vapor",  "willow", "xenon",  "yield",  "zesty",  "cat",
    "dog",    "sun",    "moon",   "star",   "tree",   "bird",   "fish",   "rain",   "snow",   "wind",   "fire",
    "gold",   "iron",   "salt",   "milk",   "rice",   "corn",   "bean",   "seed",   "leaf",   "root",   "bark",
    "wolf",   "bear",   "deer",   "frog",   "duck",   "goat",   "lion",   "mole",   "newt",   "owl",    "pig",
    "ram",    "seal",   "toad",   "yak",    "ant",    "bee",    "cow",    "eel",    "fox",    "hen",    "jay",
    "kite",   "lamp",   "map",    "nest",   "oar",    "pen",    "ring",   "ship",   "tent",   "urn",    "vase",
    "wall",   "box",    "cup",    "door",   "egg",    "fan",    "gate",   "hat",    "ink",    "jar",    "key",
    "lock",   "mug",    "net",    "pot",    "rope",   "sock",   "toy",    "van",    "web",    "axe",    "bell",
    "coin",   "drum",   "flag",   "gift",   "harp",   "jug",    "kelp",   "lens",   "mask",   "nail",   "oven",
    "pipe",   "quiz",   "road",   "sail",   "tile",   "veil",   "wing",   "yarn",   "zinc",   "blue",   "red",
    "pink",   "gray",   "black",  "white",  "brown",  "happy",  "sad",    "fast",   "slow",   "big",    "small",
    "warm",   "cold",   "soft",   "hard",   "tall",   "short",  "young",  "old",    "new",    "early",  "late",
    "bright", "dark",   "sweet",  "sour",   "calm",   "wild",   "quick",  "lazy",   "brave",  "shy",    "kind",
    "proud",  "clever", "gentle", "loud",   "silent", "empty",  "full",   "heavy",  "round",  "sharp",  "smooth",
    "thick",  "thin",   "wide",   "narrow", "deep",   "flat",   "plain",  "rich",   "poor",   "clean",  "dirty",
    "dry",    "wet",    "walk",   "run",    "jump",   "sing",   "read",   "write",  "swim",   "fly",    "cook",
    "play",   "sleep",  "talk",   "think",  "laugh",  "smile",  "climb",  "build",  "paint",  "drive",  "ride",
    "throw",  "catch",  "push",   "pull",   "open",   "close",  "carry",  "share",  "learn",  "teach",  "help",
    "grow",   "fall",   "rise",   "bake",   "wash",   "dig",    "hide",   "seek",   "find",   "keep",   "give",
    "take",   "send",   "call",   "wait",   "rest",   "hope",   "love",   "hold",   "turn",   "move",   "stay",
    "shine",  "float",  "sink",   "spin",   "melt",   "burn",   "blow"};


// Letter strings are 3-10 long and words at most 6, so bos + prompt +
// completion + eos stays within 48 tokens for every task and any task fits
// train.seq_len = 64.
std::string random_letters(SplitMix& rng, int lo = 3, int hi = 10) {
  const int n = static_cast<int>(rng.between(lo, hi));
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + rng.below(26)));
  return s;
}

std::string random_word(SplitMix& rng) { return kWords[rng.below(std::size(kWords))]; }

std::string random_word_or_letters(SplitMix& rng) {
  return rng.below(2) ? random_word(rng) : random_letters(rng);
}

std::string random_words(SplitMix& rng, int lo, int hi) {
  const int n = static_cast<int>(rng.between(lo, hi));
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += random_word(rng);
  }
  return s;
}

// Letters drawn from a small pool, so removing repeats changes the string.
std::string letters_with_repeats(SplitMix& rng) {
  const std::string pool = random_letters(rng, 3, 5);
  std::string s;
  const int n = static_cast<int>(rng.between(5, 10));
  for (int i = 0; i < n; ++i) s.push_back(pool[rng.below(pool.size())]);
  return s;
}

// ASCII only: std::toupper follows the C locale, which a Qt application sets
// from the environment, and the answers must not depend on it.
std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string shift_letters(std::string_view s, int k) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + k) % 26);
  return out;
}

// task_answer also gets inputs from outside the generators (LoRAHub, the UI),
// so the structured inputs are parsed strictly.
[[noreturn]] void bad_input(std::string_view task, std::string_view input, std::string_view expected) {
  throw DataError("task " + std::string(task) + ": input \"" + std::string(input) + "\" is not " +
                  std::string(expected));
}

bool parse_number(std::string_view s, std::int64_t& value) {
  if (s.empty() || s.size() > 9) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string add_answer(std::string_view s) {
  const auto plus = s.find(" + ");
  std::int64_t a = 0, b = 0;
  if (plus == std::string_view::npos || !parse_number(s.substr(0, plus), a) || !parse_number(s.substr(plus + 3), b))
    bad_input("add", s, "two numbers joined by \" + \" (\"12 + 7\")");
  return std::to_string(a + b);
}

std::string count_answer(std::string_view s) {
  if (s.size() < 5 || s[0] < 'a' || s[0] > 'z' || s.substr(1, 4) != " in ")
    bad_input("count", s, "a letter, \" in \" and a string (\"a in banana\")");
  const std::string_view text = s.substr(5);
  return std::to_string(std::count(text.begin(), text.end(), s[0]));
}

std::string count_input(SplitMix& rng) {
  const std::string w = random_letters(rng, 4, 10);
  // Half the time ask for a letter that occurs, so the answers are not mostly 0.
  const char c = rng.below(2) ? w[rng.below(w.size())] : static_cast<char>('a' + rng.below(26));
  return std::string(1, c) + " in " + w;
}

struct Task {
  std::string name, description;
  std::string (*input)(SplitMix&);
  std::string (*answer)(std::string_view);
};

const std::vector<Task>& tasks() {
  static const std::vector<Task> all = {
      {"reverse", "reverse the characters", random_word_or_letters,
       [](std::string_view s) { return std::string(s.rbegin(), s.rend()); }},
      {"sort", "sort the letters alphabetically", [](SplitMix& r) { return random_letters(r); },
       [](std::string_view s) {
         std::string o(s);
         std::sort(o.begin(), o.end());
         return o;
       }},
      // One or two whole words: short enough that a small model learns the
      // mapping within a short fine-tuning run.
      {"uppercase", "write the words in capital letters", [](SplitMix& r) { return random_words(r, 1, 2); },
       ascii_upper},
      {"add", "add two numbers from 0 to 999",
       [](SplitMix& r) { return std::to_string(r.between(0, 999)) + " + " + std::to_string(r.between(0, 999)); },
       add_answer},
      {"caesar", "shift every letter three places (a->d, z->c)", random_word_or_letters,
       [](std::string_view s) { return shift_letters(s, 3); }},
      {"count", "count how often the letter occurs in the string", count_input, count_answer},
      {"copy", "repeat the input", [](SplitMix& r) { return random_words(r, 1, 2); },
       [](std::string_view s) { return std::string(s); }},
      {"dedupe", "drop repeated letters, keeping first occurrences", letters_with_repeats,
       [](std::string_view s) {
         std::string o;
         for (char c : s)
           if (o.find(c) == std::string::npos) o.push_back(c);
         return o;
       }},
      {"length", "count the characters", random_word_or_letters,
       [](std::string_view s) { return std::to_string(s.size()); }},
      {"novowel", "remove the vowels", [](SplitMix& r) { return random_words(r, 1, 2); },
       [](std::string_view s) {
         std::string o;
         for (char c : s)
           if (std::string_view("aeiou").find(c) == std::string_view::npos) o.push_back(c);
         return o;
       }},
  };
  return all;
}

const Task& find_task(const std::string& name) {
  for (const Task& t : tasks())
    if (t.name == name) return t;
  std::string known;
  for (const Task& t : tasks()) known += (known.empty() ? "" : ", ") + t.name;
  throw ConfigError("data.task", "unknown task \"" + name + "\"; known: " + known);
}

}  // namespace

const std::vector<TaskInfo>& builtin_tasks() {
  static const std::vector<TaskInfo> infos = [] {
    std::vector<TaskInfo> v;
    SplitMix rng(7);
    for (const Task& t : tasks()) {
      const std::string in = t.input(rng);
      v.push_back({t.name, t.description, task_prompt(t.name, in), t.answer(in)});
    }
    return v;
  }();
  return infos;
}

std::string task_prompt(const std::string& task, std::string_view input) {
  return find_task(task).name + ": " + std::string(input) + "\n";
}

std::string task_answer(const std::string& task, std::string_view input) { return find_task(task).answer(input); }

TaskSplits draw_task_splits(const std::string& task, const std::function<TaskPair(SplitMix&)>& draw, int n_train,
                            int n_heldout, std::uint64_t seed, int n_validation) {
  if (n_train < 1) throw ConfigError("data.n_train", "expected at least 1, got " + std::to_string(n_train));
  if (n_heldout < 0) throw ConfigError("data.n_heldout", "expected 0 or more, got " + std::to_string(n_heldout));
  if (n_validation < 0)
    throw ConfigError("data.n_validation", "expected 0 or more, got " + std::to_string(n_validation));
  std::set<std::string> seen;
  auto fill = [&](SplitMix& rng, int n, std::vector<TaskPair>& out) {
    out.reserve(static_cast<std::size_t>(n));
    // 10000 repeats in a row mean the task's prompts are all but used up;
    // with the real input spaces (far larger than any request) a run of even
    // a few is rare.
    int repeats = 0;
    while (static_cast<int>(out.size()) < n) {
      TaskPair pair = draw(rng);
      if (!seen.insert(pair.prompt).second) {
        if (++repeats == 10000)
          throw DataError("task " + task + " cannot produce " + std::to_string(n_train) + " + " +
                          std::to_string(n_validation) + " + " + std::to_string(n_heldout) +
                          " distinct prompts (data.n_train + data.n_validation + data.n_heldout); ask for fewer");
        continue;
      }
      repeats = 0;
      out.push_back(std::move(pair));
    }
  };
  // Each split has its own stream and later ones redraw any collision with
  // earlier ones: the held-out set for a seed is then the same whatever
  // n_train is, so runs of different training sizes are scored alike, and the
  // validation split (first, and empty unless asked for) leaves the others as
  // they were without one.
  TaskSplits s;
  SplitMix held_rng(derive_seed(seed, 0x4E1D)), train_rng(derive_seed(seed, 0x7A1)),
      validation_rng(derive_seed(seed, 0x7A11D));
  fill(validation_rng, n_validation, s.validation);
  fill(held_rng, n_heldout, s.heldout);
  fill(train_rng, n_train, s.train);
  return s;
}

Dataset make_task_dataset(const std::string& task, const Tokenizer& tok, int n_train, int n_heldout,
                          std::uint64_t seed, int n_validation) {
  const Task& t = find_task(task);
  const TaskSplits s = draw_task_splits(
      task,
      [&](SplitMix& rng) {
        const std::string in = t.input(rng);
        return TaskPair{task_prompt(task, in), t.answer(in)};
      },
      n_train, n_heldout, seed, n_validation);
  Dataset d;
  d.name = "task:" + task;
  d.has_completions = true;
  auto examples = [&](const std::vector<TaskPair>& pairs, std::vector<Example>& out) {
    out.reserve(pairs.size());
    for (const TaskPair& p : pairs) out.push_back(make_example(tok, p.prompt, p.answer));
  };
  examples(s.validation, d.validation);
  examples(s.heldout, d.heldout);
  examples(s.train, d.train);
  return d;
}

std::string pretrain_corpus(std::int64_t n_bytes, std::uint64_t seed) {
  SplitMix rng(seed);
  std::string text;
  text.reserve(static_cast<std::size_t>(std::max<std::int64_t>(n_bytes, 0)) + 64);
  // Real text has capitalised and all-caps words; without them the base would
  // hardly know the capital letters the uppercase task asks for.
  auto cased = [&](std::string w) {
    const auto pick = rng.below(8);
    if (pick < 2) w[0] = ascii_upper(w.substr(0, 1))[0];
    if (pick == 2) w = ascii_upper(w);
    return w;
  };
  while (static_cast<std::int64_t>(text.size()) < n_bytes) {
    switch (rng.below(5)) {
      case 0: {
        const int n = static_cast<int>(rng.between(2, 8));
        std::string line = "words:";
        for (int i = 0; i < n; ++i) {
          line += ' ';
          line += cased(random_word(rng));
        }
        text += line + "\n";
        break;
      }
      case 1:
        text += "letters: " + random_letters(rng) + "\n";
        break;
      case 2:
        // Unrelated numbers: the digits without the sums the add task teaches.
        text += "numbers: " + std::to_string(rng.between(0, 999)) + " " + std::to_string(rng.between(0, 1998)) + "\n";
        break;
      default: {
        const std::string in = rng.below(2) ? random_words(rng, 1, 3) : random_letters(rng);
        text += task_prompt("copy", in) + in + "\n";
        break;
      }
    }
  }
  return text;
}

}  // namespace lwb::data
