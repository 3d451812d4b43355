import XCTest

final class LTEModelTestsPlaceholder: XCTestCase {}
