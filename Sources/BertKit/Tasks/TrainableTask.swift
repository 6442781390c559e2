/// What the runner needs from a task plugin: an encoder with one output layer in one parameter store, and
/// the task's data already turned into features.
public protocol TrainableTask: AnyObject {
    /// Every parameter, encoder and head, in one flat store: the optimizer is one pass over it.
    var parameters: ParameterStore { get }
    /// Token count of each training example, for length-grouped batching.
    var trainingLengths: [Int] { get }
    /// The metric that picks the best checkpoint (higher is better).
    var mainMetric: String { get }
    /// Forward and backward over some training examples. Gradients accumulate, scaled by `gradientScale`;
    /// returns the batch's mean loss.
    func trainStep(_ examples: ArraySlice<Int>, dropout: DropoutMode, gradientScale: Float) -> Double
    /// The task's metrics on its evaluation split.
    func evaluate() -> [String: Double]
    /// Writes the model as a Hugging Face folder, atomically.
    func export(to directory: String) throws
}
