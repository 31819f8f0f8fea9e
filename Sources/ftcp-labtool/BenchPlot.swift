import Foundation

/// A time-sequence plot in SVG, in the manner of FT-TCP's figures 6–8: bytes delivered to the
/// client application against time, with the longest gap (the client-visible stall) marked.
enum BenchPlot {
    /// Reads "milliseconds bytes" lines; comments and malformed lines are skipped.
    static func parseTrace(_ text: String) -> [(milliseconds: Double, bytes: Double)] {
        text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let parts = line.split(separator: " ")
            guard parts.count == 2, let time = Double(parts[0]), let bytes = Double(parts[1]) else { return nil }
            return (time, bytes)
        }
    }

    static func svg(_ samples: [(milliseconds: Double, bytes: Double)], title: String) -> String {
        let width = 800.0, height = 420.0, left = 70.0, right = 20.0, top = 40.0, bottom = 50.0
        let start = samples.first!.milliseconds
        let end = samples.last!.milliseconds
        let span = max(end - start, 1)
        let maximum = max(samples.map(\.bytes).max() ?? 1, 1)
        func x(_ t: Double) -> Double { left + (t - start) / span * (width - left - right) }
        func y(_ b: Double) -> Double { height - bottom - b / maximum * (height - top - bottom) }

        // The longest gap between two reads is the stall.
        var gapIndex = 1
        for index in 1..<samples.count
        where samples[index].milliseconds - samples[index - 1].milliseconds
            > samples[gapIndex].milliseconds - samples[gapIndex - 1].milliseconds
        {
            gapIndex = index
        }
        let gapStart = samples[gapIndex - 1].milliseconds
        let gapEnd = samples[gapIndex].milliseconds

        // At most about 1500 points, always keeping both ends of the stall.
        let stride = max(1, samples.count / 1500)
        var kept: [(milliseconds: Double, bytes: Double)] = []
        for (index, sample) in samples.enumerated()
        where index % stride == 0 || index == gapIndex || index == gapIndex - 1 || index == samples.count - 1 {
            kept.append(sample)
        }
        let points = kept.map { String(format: "%.1f,%.1f", x($0.milliseconds), y($0.bytes)) }.joined(separator: " ")

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" font-size="14">\(title)</text>
            <rect x="\(String(format: "%.1f", x(gapStart)))" y="\(top)" width="\(String(format: "%.1f", max(1, x(gapEnd) - x(gapStart))))" height="\(height - top - bottom)" fill="#f4cccc"/>
            <text x="\(String(format: "%.1f", x(gapEnd) + 4))" y="\(top + 16)" fill="#990000">stall \(String(format: "%.1f", gapEnd - gapStart)) ms</text>
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
            <polyline fill="none" stroke="#1f4e9c" stroke-width="1.5" points="\(points)"/>

            """
        for step in 0...5 {
            let t = start + span * Double(step) / 5
            let b = maximum * Double(step) / 5
            svg += """
                <text x="\(String(format: "%.1f", x(t)))" y="\(height - bottom + 16)" text-anchor="middle">\(String(format: "%.0f", t - start))</text>
                <text x="\(left - 6)" y="\(String(format: "%.1f", y(b) + 4))" text-anchor="end">\(String(format: "%.0f", b / 1_000_000))</text>

                """
        }
        svg += """
            <text x="\(width / 2)" y="\(height - 10)" text-anchor="middle">time since the session began, ms</text>
            <text x="18" y="\(height / 2)" text-anchor="middle" transform="rotate(-90 18 \(height / 2))">MB delivered to the client</text>
            </svg>

            """
        return svg
    }
}
