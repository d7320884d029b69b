extension PriceTable {
    /// List prices (USD per million tokens) of the common models of the major providers, as
    /// published by OpenAI, Anthropic and Google in 2025. A LiteLLM-format price file or a
    /// `[prices]` table in the config overrides any of them.
    public static let builtIn: PriceTable = {
        var table = PriceTable()
        func add(
            _ names: [String],
            _ input: String,
            _ output: String,
            cached: String? = nil,
            cacheWrite: String? = nil,
            batch: (String, String)? = nil,
            encoding: String? = nil,
            provider: String
        ) {
            let price = ModelPrice(
                inputPerMillion: Money(usd: input)!,
                outputPerMillion: Money(usd: output)!,
                cachedInputPerMillion: cached.map { Money(usd: $0)! },
                cacheWriteInputPerMillion: cacheWrite.map { Money(usd: $0)! },
                batchInputPerMillion: batch.map { Money(usd: $0.0)! },
                batchOutputPerMillion: batch.map { Money(usd: $0.1)! },
                encoding: encoding,
                provider: provider
            )
            for name in names { table.set(name, price) }
        }
        let o200k = "o200k_base"
        let cl100k = "cl100k_base"

        // OpenAI
        add(["gpt-4o", "chatgpt-4o-latest"], "2.50", "10.00", cached: "1.25", batch: ("1.25", "5.00"), encoding: o200k, provider: "openai")
        add(["gpt-4o-mini"], "0.15", "0.60", cached: "0.075", batch: ("0.075", "0.30"), encoding: o200k, provider: "openai")
        add(["gpt-4.1"], "2.00", "8.00", cached: "0.50", batch: ("1.00", "4.00"), encoding: o200k, provider: "openai")
        add(["gpt-4.1-mini"], "0.40", "1.60", cached: "0.10", batch: ("0.20", "0.80"), encoding: o200k, provider: "openai")
        add(["gpt-4.1-nano"], "0.10", "0.40", cached: "0.025", batch: ("0.05", "0.20"), encoding: o200k, provider: "openai")
        add(["gpt-5"], "1.25", "10.00", cached: "0.125", batch: ("0.625", "5.00"), encoding: o200k, provider: "openai")
        add(["gpt-5-mini"], "0.25", "2.00", cached: "0.025", batch: ("0.125", "1.00"), encoding: o200k, provider: "openai")
        add(["gpt-5-nano"], "0.05", "0.40", cached: "0.005", batch: ("0.025", "0.20"), encoding: o200k, provider: "openai")
        add(["o1"], "15.00", "60.00", cached: "7.50", batch: ("7.50", "30.00"), encoding: o200k, provider: "openai")
        add(["o1-mini"], "1.10", "4.40", cached: "0.55", batch: ("0.55", "2.20"), encoding: o200k, provider: "openai")
        add(["o1-pro"], "150.00", "600.00", batch: ("75.00", "300.00"), encoding: o200k, provider: "openai")
        add(["o3"], "2.00", "8.00", cached: "0.50", batch: ("1.00", "4.00"), encoding: o200k, provider: "openai")
        add(["o3-mini"], "1.10", "4.40", cached: "0.55", batch: ("0.55", "2.20"), encoding: o200k, provider: "openai")
        add(["o3-pro"], "20.00", "80.00", batch: ("10.00", "40.00"), encoding: o200k, provider: "openai")
        add(["o4-mini"], "1.10", "4.40", cached: "0.275", batch: ("0.55", "2.20"), encoding: o200k, provider: "openai")
        add(["gpt-4-turbo"], "10.00", "30.00", batch: ("5.00", "15.00"), encoding: cl100k, provider: "openai")
        add(["gpt-4"], "30.00", "60.00", batch: ("15.00", "30.00"), encoding: cl100k, provider: "openai")
        add(["gpt-3.5-turbo"], "0.50", "1.50", batch: ("0.25", "0.75"), encoding: cl100k, provider: "openai")
        add(["text-embedding-3-small"], "0.02", "0", batch: ("0.01", "0"), encoding: cl100k, provider: "openai")
        add(["text-embedding-3-large"], "0.13", "0", batch: ("0.065", "0"), encoding: cl100k, provider: "openai")
        add(["text-embedding-ada-002"], "0.10", "0", batch: ("0.05", "0"), encoding: cl100k, provider: "openai")

        // Anthropic (cache reads at 0.1x input, 5-minute cache writes at 1.25x, batch at 0.5x)
        add(["claude-opus-4-5"], "5.00", "25.00", cached: "0.50", cacheWrite: "6.25", batch: ("2.50", "12.50"), provider: "anthropic")
        add(["claude-opus-4-1", "claude-opus-4", "claude-3-opus"], "15.00", "75.00", cached: "1.50", cacheWrite: "18.75", batch: ("7.50", "37.50"), provider: "anthropic")
        add(["claude-sonnet-4-5", "claude-sonnet-4", "claude-3-7-sonnet", "claude-3-5-sonnet"], "3.00", "15.00", cached: "0.30", cacheWrite: "3.75", batch: ("1.50", "7.50"), provider: "anthropic")
        add(["claude-haiku-4-5"], "1.00", "5.00", cached: "0.10", cacheWrite: "1.25", batch: ("0.50", "2.50"), provider: "anthropic")
        add(["claude-3-5-haiku"], "0.80", "4.00", cached: "0.08", cacheWrite: "1.00", batch: ("0.40", "2.00"), provider: "anthropic")
        add(["claude-3-haiku"], "0.25", "1.25", cached: "0.03", cacheWrite: "0.30", batch: ("0.125", "0.625"), provider: "anthropic")

        // Google (prompts up to 200k tokens for the Pro models)
        add(["gemini-2.5-pro"], "1.25", "10.00", cached: "0.3125", batch: ("0.625", "5.00"), provider: "google")
        add(["gemini-2.5-flash"], "0.30", "2.50", cached: "0.075", batch: ("0.15", "1.25"), provider: "google")
        add(["gemini-2.5-flash-lite"], "0.10", "0.40", cached: "0.025", batch: ("0.05", "0.20"), provider: "google")
        add(["gemini-2.0-flash"], "0.10", "0.40", cached: "0.025", batch: ("0.05", "0.20"), provider: "google")
        add(["gemini-2.0-flash-lite"], "0.075", "0.30", batch: ("0.0375", "0.15"), provider: "google")
        add(["gemini-1.5-pro"], "1.25", "5.00", cached: "0.3125", provider: "google")
        add(["gemini-1.5-flash"], "0.075", "0.30", cached: "0.01875", provider: "google")

        // Images: a price per generated image (1024x1024) by quality.
        table.set("dall-e-3", ModelPrice(inputPerMillion: .zero, outputPerMillion: .zero, perImage: ["standard": Money(usd: "0.040")!, "hd": Money(usd: "0.080")!], provider: "openai"))
        table.set("dall-e-2", ModelPrice(inputPerMillion: .zero, outputPerMillion: .zero, perImage: ["standard": Money(usd: "0.020")!], provider: "openai"))
        return table
    }()
}
