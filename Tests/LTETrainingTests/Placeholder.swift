import XCTest

final class LTETrainingTestsPlaceholder: XCTestCase {}
