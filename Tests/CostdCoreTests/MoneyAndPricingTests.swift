import Testing

@testable import CostdCore

@Suite struct MoneyTests {
    @Test func readsDecimalsExactly() {
        #expect(Money(usd: "0.15")?.nanos == 150_000_000)
        #expect(Money(usd: "1e-9")?.nanos == 1)
        #expect(Money(usd: "0.0000000015")?.nanos == 2)  // rounds half away from zero
        #expect(Money(usd: "-2.5")?.nanos == -2_500_000_000)
        #expect(Money(usd: "abc") == nil)
        #expect(Money(usd: "1e30") == nil)
    }

    @Test func printsExactDecimals() {
        #expect(Money(nanos: 7_500_000).decimalString == "0.0075")
        #expect(Money(nanos: 1).decimalString == "0.000000001")
        #expect(Money(nanos: 12_000_000_000).decimalString == "12")
        #expect(Money(nanos: -1_500_000_000).decimalString == "-1.5")
    }

    @Test func aMillionIdenticalRecordsSumExactly() {
        var book = SpendBook()
        let cost = Money(nanos: 2_625)  // 0.000002625 USD
        for index in 0..<1_000_000 {
            book.apply(SpendRecord(recordId: "r\(index)", unixMillis: 0, day: "2026-11-29", model: "m", cost: cost))
        }
        #expect(book.spent(.day, period: "2026-11-29") == Money(nanos: 2_625_000_000))
        #expect(book.spent(.month, period: "2026-11") == Money(nanos: 2_625_000_000))
        #expect(book.totals(day: "2026-11-29").requests == 1_000_000)
    }
}

@Suite struct PricingTests {
    let prices = PriceTable.builtIn

    @Test func builtInPricesOfTheCommonModels() throws {
        #expect(prices.price(for: "gpt-4o-mini")?.inputPerMillion == Money(usd: "0.15"))
        #expect(prices.price(for: "gpt-4o-mini")?.outputPerMillion == Money(usd: "0.60"))
        #expect(prices.price(for: "gpt-4o")?.inputPerMillion == Money(usd: "2.50"))
        #expect(prices.price(for: "gpt-4o")?.outputPerMillion == Money(usd: "10.00"))
        #expect(prices.price(for: "text-embedding-3-small")?.inputPerMillion == Money(usd: "0.02"))
        #expect(prices.price(for: "dall-e-3")?.perImage["standard"] == Money(usd: "0.040"))
        #expect(prices.price(for: "dall-e-3")?.perImage["hd"] == Money(usd: "0.080"))
        for model in ["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini", "o4-mini", "claude-sonnet-4-5",
            "claude-opus-4-1", "claude-3-5-haiku", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash"]
        {
            #expect(prices.price(for: model) != nil, "\(model)")
        }
    }

    @Test func pricesTokensExactly() throws {
        // 1000 in × $2.50/M + 500 out × $10/M = $0.0025 + $0.005
        #expect(try prices.cost(model: "gpt-4o", usage: Usage(inputTokens: 1_000, outputTokens: 500)) == Money(usd: "0.0075"))
        // 3 tokens of gpt-4o-mini input: 0.00000045
        #expect(try prices.cost(model: "gpt-4o-mini", usage: Usage(inputTokens: 3)) == Money(nanos: 450))
    }

    @Test func cachedInputAndBatchUseTheirPrices() throws {
        // 1000 prompt tokens of which 800 cached: 200 × 2.50 + 800 × 1.25 = 1500 per M → $0.0015
        let cached = Usage(inputTokens: 1_000, outputTokens: 0, cachedInputTokens: 800)
        #expect(try prices.cost(model: "gpt-4o", usage: cached) == Money(usd: "0.0015"))
        let batch = Usage(inputTokens: 1_000_000, outputTokens: 1_000_000, batch: true)
        #expect(try prices.cost(model: "gpt-4o", usage: batch) == Money(usd: "6.25"))
        #expect(throws: PricingError.cachedTokensExceedInput) {
            try prices.cost(model: "gpt-4o", usage: Usage(inputTokens: 1, cachedInputTokens: 2))
        }
    }

    @Test func imagesArePricedPerImage() throws {
        #expect(try prices.cost(model: "dall-e-3", usage: Usage(images: 3)) == Money(usd: "0.12"))
        #expect(try prices.cost(model: "dall-e-3", usage: Usage(images: 2, imageQuality: "hd")) == Money(usd: "0.16"))
        #expect(throws: PricingError.self) { try prices.cost(model: "dall-e-2", usage: Usage(images: 1, imageQuality: "hd")) }
    }

    @Test func unknownModelsAreErrorsNotZero() {
        #expect(throws: PricingError.unknownModel("my-model")) { try prices.cost(model: "my-model", usage: Usage(inputTokens: 1)) }
    }

    @Test func snapshotsAndProviderPrefixesFallBackToTheFamily() {
        #expect(prices.price(for: "gpt-4o-2024-08-06") == prices.price(for: "gpt-4o"))
        #expect(prices.price(for: "openai/gpt-4o-mini") == prices.price(for: "gpt-4o-mini"))
        #expect(prices.price(for: "claude-3-5-haiku-20241022") == prices.price(for: "claude-3-5-haiku"))
        #expect(prices.price(for: "GPT-4o") == prices.price(for: "gpt-4o"))
    }

    @Test func importsTheLiteLLMPriceMap() throws {
        let document = try JSONParser.parse(
            #"""
            {
              "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
              "gpt-4o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06,
                         "cache_read_input_token_cost": 5e-07, "input_cost_per_token_batches": 1e-06,
                         "output_cost_per_token_batches": 4e-06, "litellm_provider": "openai", "mode": "chat"},
              "my-llm": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
              "my-image-model": {"output_cost_per_image": 0.05},
              "no-prices": {"mode": "chat"}
            }
            """#
        )
        let imported = try PriceTable.fromLiteLLM(document)
        #expect(imported.count == 3)
        let merged = PriceTable.builtIn.merging(imported)
        let gpt4o = try #require(merged.price(for: "gpt-4o"))
        #expect(gpt4o.inputPerMillion == Money(usd: "2"))
        #expect(gpt4o.cachedInputPerMillion == Money(usd: "0.5"))
        #expect(gpt4o.batchOutputPerMillion == Money(usd: "4"))
        #expect(gpt4o.encoding == "o200k_base")  // kept from the built-in entry
        #expect(merged.price(for: "my-llm")?.inputPerMillion == Money(usd: "0.15"))
        #expect(try merged.cost(model: "my-image-model", usage: Usage(images: 2)) == Money(usd: "0.10"))
        #expect(throws: PriceFileError.self) { try PriceTable.fromLiteLLM(try JSONParser.parse(#"{"x":{"input_cost_per_token":"a"}}"#)) }
    }
}
