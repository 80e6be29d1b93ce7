// SPDX-License-Identifier: MIT
/*
 * args.h - a benchmark's command line, read one option at a time, and the
 * options every benchmark timed in alternating rounds (rounds.h) takes:
 * --steps N, --rounds R, --seed S.
 *
 *   ua::bench::arg_reader args(argc, argv, missing);
 *   while (args.next()) {
 *           if (ua::bench::rounds_option(args, o.steps, o.rounds, o.seed))
 *                   continue;
 *           if (args.option() == "--json")
 *                   o.json = args.value();
 *           ...
 *   }
 *
 * A value missing after the last option calls missing(option), which
 * reports it and exits: each benchmark keeps its own message.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>

namespace ua::bench {

class arg_reader {
public:
	arg_reader(int argc, char **argv, std::function<void(const std::string &)> missing)
		: argc_(argc), argv_(argv), missing_(std::move(missing))
	{
	}

	/* Moves to the next option; false after the last. */
	bool next()
	{
		if (++i_ >= argc_)
			return false;
		option_ = argv_[i_];
		return true;
	}
	const std::string &option() const noexcept { return option_; }
	/* The option's value: the next argument, which is consumed. */
	const char *value()
	{
		if (i_ + 1 >= argc_) {
			missing_(option_);
			std::exit(2); /* missing_ should not return */
		}
		return argv_[++i_];
	}
	/* The value as a decimal number (strtoull(): 0 when not one). */
	std::uint64_t count() { return std::strtoull(value(), nullptr, 10); }

private:
	int argc_;
	char **argv_;
	std::function<void(const std::string &)> missing_;
	int i_ = 0;
	std::string option_;
};

/* --steps, --rounds or --seed into its field: true when the option was one of them. */
inline bool rounds_option(arg_reader &args, std::size_t &steps, std::size_t &rounds, std::uint64_t &seed)
{
	const std::string &a = args.option();
	if (a == "--steps")
		steps = args.count();
	else if (a == "--rounds")
		rounds = args.count();
	else if (a == "--seed")
		seed = args.count();
	else
		return false;
	return true;
}

}  // namespace ua::bench
