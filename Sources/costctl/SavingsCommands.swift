import ArgumentParser
import CostdClient
import CostdCore
import Foundation

/// `costctl tokens`: exact token counts of files, and what a shorter prompt is worth.
struct Tokens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Count tokens of files exactly; --compare BEFORE AFTER prices a prompt rewrite.",
        discussion: """
            costctl tokens prompt.txt other.txt --model gpt-4o
            costctl tokens --compare old-prompt.txt new-prompt.txt --model gpt-4o --calls-per-day 10000
            """
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "Count with this model's tokenizer (default: o200k_base, today's OpenAI models).") var model: String?
    @Option(help: "Count with this encoding: o200k_base or cl100k_base.") var encoding: String?
    @Flag(help: "Compare two files: BEFORE and AFTER.") var compare = false
    @Option(name: .customLong("calls-per-day"), help: "With --compare: calls a day, to price the saving.") var callsPerDay: Double = 1_000
    @Option(help: "With --compare: days in a month.") var days: Int = 30
    @Argument(help: "Files to count (- for standard input).") var files: [String]

    func validate() throws {
        guard callsPerDay.isFinite, (0...1e12).contains(callsPerDay) else {
            throw ValidationError("--calls-per-day must be a number from 0 to 1e12")
        }
        guard days > 0 else { throw ValidationError("--days must be positive") }
    }

    func read(_ path: String) throws -> String {
        let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path)
        guard let data else { throw ValidationError("cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(path) is not UTF-8 text") }
        return text
    }

    func count(_ text: String, _ connection: CostdConnection) throws -> (Int64, String) {
        var params = JSONObject()
        params.append("text", .string(text))
        if let model { params.append("model", .string(model)) }
        if let encoding { params.append("encoding", .string(encoding)) }
        let result = try connection.call("tokens", .object(params))
        return (result["tokens"]?.numberValue?.int64 ?? 0, result["encoding"]?.stringValue ?? "?")
    }

    func run() throws {
        let connection = try options.connect()
        if compare {
            guard files.count == 2 else { throw ValidationError("--compare takes two files: BEFORE AFTER") }
            try runComparison(connection)
            return
        }
        guard !files.isEmpty else { throw ValidationError("name at least one file") }
        var results = JSONObject()
        var total: Int64 = 0
        var encodingName = ""
        for file in files {
            let (tokens, encoding) = try count(try read(file), connection)
            total += tokens
            encodingName = encoding
            results.append(file, .int(tokens))
            if !options.json { print("\(Format.padLeft(Format.count(.int(tokens)), 10))  \(file)") }
        }
        if options.json {
            print(JSONValue.object(["files": .object(results), "totalTokens": .int(total), "encoding": .string(encodingName)]).jsonString)
        } else if files.count > 1 {
            print("\(Format.padLeft(Format.count(.int(total)), 10))  total (\(encodingName))")
        } else {
            print("            (\(encodingName))")
        }
    }

    func runComparison(_ connection: CostdConnection) throws {
        let (before, encodingName) = try count(try read(files[0]), connection)
        let (after, _) = try count(try read(files[1]), connection)
        let saved = before - after
        let percent = before > 0 ? Double(saved) / Double(before) * 100 : 0
        let pricedModel = model ?? "gpt-4o"
        // What the saved prompt tokens are worth: the daemon prices both prompt sizes.
        func cost(_ tokens: Int64) throws -> (day: Money, month: Money) {
            let result = try connection.call(
                "estimate",
                [
                    "model": .string(pricedModel), "dailyRequests": .number(JSONNumber(callsPerDay) ?? JSONNumber(0)),
                    "avgInputTokens": .int(tokens), "avgOutputTokens": 0, "days": .int(days),
                ]
            )
            return (
                result["dailyUsd"]?.numberValue.flatMap { Money(usd: $0) } ?? .zero,
                result["monthlyUsd"]?.numberValue.flatMap { Money(usd: $0) } ?? .zero
            )
        }
        let costBefore = try cost(before)
        let costAfter = try cost(after)
        let perDay = costBefore.day - costAfter.day
        let perMonth = costBefore.month - costAfter.month
        if options.json {
            print(
                JSONValue.object([
                    "before": .int(before), "after": .int(after), "savedTokens": .int(saved),
                    "savedPercent": .number(JSONNumber((percent * 10).rounded() / 10) ?? JSONNumber(0)),
                    "encoding": .string(encodingName), "model": .string(pricedModel),
                    "callsPerDay": .number(JSONNumber(callsPerDay) ?? JSONNumber(0)),
                    "savedUsdPerDay": .number(JSONNumber(validatedLiteral: perDay.decimalString)),
                    "savedUsdPerMonth": .number(JSONNumber(validatedLiteral: perMonth.decimalString)),
                ]).jsonString
            )
            return
        }
        print("\(Format.pad(files[0], 24)) \(Format.padLeft(Format.count(.int(before)), 9)) tokens")
        print("\(Format.pad(files[1], 24)) \(Format.padLeft(Format.count(.int(after)), 9)) tokens")
        print("\(Format.pad("saving", 24)) \(Format.padLeft(Format.count(.int(saved)), 9)) tokens (\(String(format: "%.1f", percent))%, \(encodingName))")
        print(
            "at \(pricedModel) input prices and \(Format.count(.int(Int64(callsPerDay)))) calls a day: "
                + "\(Format.usd(.number(JSONNumber(validatedLiteral: perDay.decimalString)))) a day, "
                + "\(Format.usd(.number(JSONNumber(validatedLiteral: perMonth.decimalString)))) a \(days)-day month"
        )
    }
}
