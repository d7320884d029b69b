// Byte-pair merging of one piece, exactly as tiktoken's `_byte_pair_merge`:
//
//   start with one part per byte; repeatedly merge the adjacent pair of parts whose
//   concatenated bytes have the lowest rank (the leftmost such pair on ties) until no
//   adjacent pair's concatenation is a token.
//
// Two implementations with identical results: a linear scan over a small array for
// ordinary pieces (what tiktoken does; fastest for short pieces), and a binary heap
// over a linked list for long pieces (O(n log n) instead of O(n²)).

/// Pieces longer than this many bytes use the heap-based merge.
let longPieceThreshold = 128

/// One part of a piece during the linear merge.
struct MergePart {
    /// Byte offset of the part in the piece.
    var start: Int32
    /// Rank of (this part + the next part), or `RankTable.none`.
    var pairRank: UInt32
    /// Token id of this part.
    var token: UInt32
}

extension RankLookup {
    /// Merges `piece[0..<n]` (2 ≤ n ≤ `longPieceThreshold`) and returns the number of
    /// resulting tokens; their ids are `parts[0..<count].token`.
    @inline(__always)
    func mergeShort(_ piece: UnsafePointer<UInt8>, _ n: Int, parts: UnsafeMutablePointer<MergePart>) -> Int {
        let none = RankTable.none
        // parts[0...n]: one per byte plus an end sentinel at offset n.
        var minRank = none
        var minIndex = 0
        for i in 0..<(n - 1) {
            let r = rank(piece + i, 2)
            if r < minRank { minRank = r; minIndex = i }
            parts[i] = MergePart(start: Int32(i), pairRank: r, token: byteRanks[Int(piece[i])])
        }
        parts[n - 1] = MergePart(start: Int32(n - 1), pairRank: none, token: byteRanks[Int(piece[n - 1])])
        parts[n] = MergePart(start: Int32(n), pairRank: none, token: none)
        var count = n + 1  // number of entries including the end sentinel

        // Rank of parts[i] + parts[i + 1] merged with parts[i + 2] (before removal of i + 1).
        @inline(__always) func rankAfterMerge(_ i: Int) -> UInt32 {
            guard i + 3 < count else { return none }
            let s = Int(parts[i].start)
            return rank(piece + s, Int(parts[i + 3].start) - s)
        }

        while minRank != none {
            let i = minIndex
            if i > 0 { parts[i - 1].pairRank = rankAfterMerge(i - 1) }
            parts[i].token = minRank
            parts[i].pairRank = rankAfterMerge(i)
            // Remove parts[i + 1].
            (parts + i + 1).update(from: parts + i + 2, count: count - i - 2)
            count -= 1

            minRank = none
            for j in 0..<(count - 1) where parts[j].pairRank < minRank {
                minRank = parts[j].pairRank
                minIndex = j
            }
        }
        return count - 1
    }

    /// Merges a long piece `piece[0..<n]` (n ≥ 2) and calls `emit` with each token id
    /// in order; returns the number of tokens. Same result as `mergeShort`.
    func mergeLong(_ piece: UnsafePointer<UInt8>, _ n: Int, emit: (UInt32) -> Void) -> Int {
        let none = RankTable.none
        // Parts form a linked list indexed by their start offset; n is the end sentinel.
        let next = UnsafeMutablePointer<Int32>.allocate(capacity: n + 1)
        let prev = UnsafeMutablePointer<Int32>.allocate(capacity: n + 1)
        let pairRank = UnsafeMutablePointer<UInt32>.allocate(capacity: n + 1)
        let token = UnsafeMutablePointer<UInt32>.allocate(capacity: n + 1)
        // Min-heap of (rank << 32 | start): lowest rank first, then leftmost.
        // Each merge pushes at most 2 entries, so 3n bounds the size.
        let heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 3 * n)
        defer {
            next.deallocate(); prev.deallocate(); pairRank.deallocate()
            token.deallocate(); heap.deallocate()
        }
        var heapCount = 0

        func push(_ value: UInt64) {
            var i = heapCount
            heapCount += 1
            while i > 0 {
                let parent = (i - 1) >> 1
                if heap[parent] <= value { break }
                heap[i] = heap[parent]
                i = parent
            }
            heap[i] = value
        }
        func pop() -> UInt64 {
            let top = heap[0]
            heapCount -= 1
            let last = heap[heapCount]
            var i = 0
            while true {
                var child = 2 * i + 1
                if child >= heapCount { break }
                if child + 1 < heapCount && heap[child + 1] < heap[child] { child += 1 }
                if last <= heap[child] { break }
                heap[i] = heap[child]
                i = child
            }
            heap[i] = last
            return top
        }

        for i in 0...n {
            next[i] = Int32(i + 1)
            prev[i] = Int32(i - 1)
            pairRank[i] = none
        }
        for i in 0..<n { token[i] = byteRanks[Int(piece[i])] }
        for i in 0..<(n - 1) {
            let r = rank(piece + i, 2)
            pairRank[i] = r
            if r != none { push(UInt64(r) << 32 | UInt64(i)) }
        }

        while heapCount > 0 {
            let top = pop()
            let r = UInt32(truncatingIfNeeded: top >> 32)
            let s = Int(UInt32(truncatingIfNeeded: top))
            guard pairRank[s] == r else { continue }  // stale entry
            // Merge part s with its successor t.
            let t = Int(next[s])
            let u = Int(next[t])
            token[s] = r
            next[s] = Int32(u)
            prev[u] = Int32(s)
            pairRank[t] = none  // t is gone; invalidates its heap entries
            // New pair ranks for (s, u) and (prev(s), s).
            if u < n {
                let v = Int(next[u])
                pairRank[s] = rank(piece + s, v - s)
                if pairRank[s] != none { push(UInt64(pairRank[s]) << 32 | UInt64(s)) }
            } else {
                pairRank[s] = none
            }
            if s > 0 {
                let q = Int(prev[s])
                pairRank[q] = rank(piece + q, u - q)
                if pairRank[q] != none { push(UInt64(pairRank[q]) << 32 | UInt64(q)) }
            }
        }

        var count = 0
        var i = 0
        while i < n {
            emit(token[i])
            count += 1
            i = Int(next[i])
        }
        return count
    }
}
