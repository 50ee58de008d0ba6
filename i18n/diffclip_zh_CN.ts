<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>DiffClipDock</name>
    <message>
        <source>(about {t} left in this phase)</source>
        <translation>（本阶段约剩 {t}）</translation>
    </message>
    <message>
        <source>&lt;b&gt;PyTorch is not available in QGIS's Python&lt;/b&gt;, so DiffCLIP cannot train or classify. Classes and samples can still be prepared.</source>
        <translation>&lt;b&gt;QGIS 的 Python 中没有可用的 PyTorch&lt;/b&gt;，因此 DiffCLIP 无法训练或分类。仍可准备类别和样本。</translation>
    </message>
    <message>
        <source>Accuracy estimate: {a:.1f} % balanced accuracy (mean of the per-class accuracies) at the {w} x {w} window, from the window-choice runs: short trainings on parts of your {n} samples, each tested on the samples it left out. The final model trains longer on all samples. Samples clicked close together make it optimistic; for a map accuracy, label a validation sample (DiffCLIP Validation Sample algorithm).</source>
        <translation>精度估计：{w} x {w} 窗口下的平衡精度（各类别精度的平均值）为 {a:.1f} %，来自选择窗口时的短训练：每次用您 {n} 个样本中的一部分训练，并在未参与训练的样本上测试。最终模型在全部样本上训练得更久。样本点击得彼此很近时该估计偏乐观；如需地图精度，请标注验证样本（DiffCLIP Validation Sample 算法）。</translation>
    </message>
    <message>
        <source>Add a class</source>
        <translation>添加类别</translation>
    </message>
    <message>
        <source>Add a class and select it in the class table first.</source>
        <translation>请先添加一个类别并在类别表中选中它。</translation>
    </message>
    <message>
        <source>Add at least two classes.</source>
        <translation>请至少添加两个类别。</translation>
    </message>
    <message>
        <source>Add them</source>
        <translation>添加这些样本</translation>
    </message>
    <message>
        <source>All suggested samples are labelled or skipped: press Run again to train with the labels you gave.</source>
        <translation>所有建议样本均已标注或跳过：请再次点击“运行”，用您给出的标注训练。</translation>
    </message>
    <message>
        <source>CPU build</source>
        <translation>CPU 版本</translation>
    </message>
    <message>
        <source>CPU only</source>
        <translation>仅 CPU</translation>
    </message>
    <message>
        <source>CUDA 12.1 build (NVIDIA GPU)</source>
        <translation>CUDA 12.1 版本（NVIDIA GPU）</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>Cancelling...</source>
        <translation>正在取消……</translation>
    </message>
    <message>
        <source>Cannot create the sample file {path}: {error}</source>
        <translation>无法创建样本文件 {path}：{error}</translation>
    </message>
    <message>
        <source>Cannot save the class list: {e}</source>
        <translation>无法保存类别列表：{e}</translation>
    </message>
    <message>
        <source>Cannot write to the sample layer: {error}</source>
        <translation>无法写入样本图层：{error}</translation>
    </message>
    <message>
        <source>Class '{name}' has {n} sample(s). Remove the class and delete its samples?</source>
        <translation>类别“{name}”有 {n} 个样本。删除该类别并删除其样本吗？</translation>
    </message>
    <message>
        <source>Class colour</source>
        <translation>类别颜色</translation>
    </message>
    <message>
        <source>Class list saved to {path}</source>
        <translation>类别列表已保存到 {path}</translation>
    </message>
    <message>
        <source>Class lists (*.json *.csv)</source>
        <translation>类别列表 (*.json *.csv)</translation>
    </message>
    <message>
        <source>Classes and prompts</source>
        <translation>类别与提示词</translation>
    </message>
    <message>
        <source>Classification cancelled; nothing was written.</source>
        <translation>分类已取消；未写入任何文件。</translation>
    </message>
    <message>
        <source>{other} was not made by this project, so it is left alone: new samples go to {path}.</source>
        <translation>{other} 不是由此项目创建的，因此保持不变：新样本将保存到 {path}。</translation>
    </message>
    <message>
        <source>Could not copy the samples to {path} ({error}); they stay in {source}.</source>
        <translation>无法将样本复制到 {path}（{error}）；样本仍保存在 {source}。</translation>
    </message>
    <message>
        <source>The run finished after another project was opened, so nothing was added to this one; its files are in {folder}.</source>
        <translation>运行结束时已打开了另一个项目，因此没有向当前项目添加任何内容；其文件位于 {folder}。</translation>
    </message>
    <message>
        <source>Classification failed: {error}</source>
        <translation>分类失败：{error}</translation>
    </message>
    <message>
        <source>Close QGIS, open Terminal and run (QGIS's own Python):</source>
        <translation>关闭 QGIS，打开“终端”并运行（使用 QGIS 自带的 Python）：</translation>
    </message>
    <message>
        <source>Close QGIS, open the OSGeo4W Shell (Start menu, as administrator) and run:</source>
        <translation>关闭 QGIS，（以管理员身份从开始菜单）打开 OSGeo4W Shell 并运行：</translation>
    </message>
    <message>
        <source>Colour</source>
        <translation>颜色</translation>
    </message>
    <message>
        <source>Copy command</source>
        <translation>复制命令</translation>
    </message>
    <message>
        <source>Detected: {device}</source>
        <translation>检测到：{device}</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>DiffCLIP Few-shot Classification</source>
        <translation>DiffCLIP 小样本分类</translation>
    </message>
    <message>
        <source>DiffCLIP classification {n:03d}</source>
        <translation>DiffCLIP 分类结果 {n:03d}</translation>
    </message>
    <message>
        <source>DiffCLIP confidence {n:03d}</source>
        <translation>DiffCLIP 置信度 {n:03d}</translation>
    </message>
    <message>
        <source>DiffCLIP few-shot classification</source>
        <translation>DiffCLIP 小样本分类</translation>
    </message>
    <message>
        <source>DiffCLIP models (*.pt)</source>
        <translation>DiffCLIP 模型 (*.pt)</translation>
    </message>
    <message>
        <source>DiffCLIP sample suggestions</source>
        <translation>DiffCLIP 样本建议</translation>
    </message>
    <message>
        <source>DiffCLIP samples</source>
        <translation>DiffCLIP 样本</translation>
    </message>
    <message>
        <source>DiffCLIP suggested samples</source>
        <translation>DiffCLIP 建议样本</translation>
    </message>
    <message>
        <source>Done.</source>
        <translation>完成。</translation>
    </message>
    <message>
        <source>Double-click to change the colour</source>
        <translation>双击更改颜色</translation>
    </message>
    <message>
        <source>Delete samples</source>
        <translation>删除样本</translation>
    </message>
    <message>
        <source>Delete the {n} samples of the unsaved project of {time}? This cannot be undone.</source>
        <translation>删除 {time} 未保存项目的 {n} 个样本？此操作无法撤销。</translation>
    </message>
    <message>
        <source>Could not delete {path}: {error}. The samples are kept.</source>
        <translation>无法删除 {path}：{error}。样本已保留。</translation>
    </message>
    <message>
        <source>{path} is no longer offered: this project was saved or has samples of its own, or another QGIS session took the file.</source>
        <translation>{path} 不再提供：此项目已保存或已有自己的样本，或另一个 QGIS 会话已占用该文件。</translation>
    </message>
    <message>
        <source>{path} is in use by another QGIS session.</source>
        <translation>{path} 正被另一个 QGIS 会话使用。</translation>
    </message>
    <message>
        <source>another QGIS session is using it</source>
        <translation>另一个 QGIS 会话正在使用它</translation>
    </message>
    <message>
        <source>a saved project uses it</source>
        <translation>一个已保存的项目正在使用它</translation>
    </message>
    <message>
        <source>Delete them</source>
        <translation>删除这些样本</translation>
    </message>
    <message>
        <source>Failed.</source>
        <translation>失败。</translation>
    </message>
    <message>
        <source>Few-shot fine-tuning on the labelled samples. With the preset&apos;s number, the cpu preset trains for {0} optimiser steps: fewer epochs when there are many samples, more when there are few. Any other number is used in full.</source>
        <translation>在已标注样本上进行小样本微调。使用预设的轮数时，cpu 预设执行 {0} 个优化步：样本多时轮数更少，样本少时轮数更多。其他轮数将完整执行。</translation>
    </message>
    <message>
        <source>Files of other unsaved projects in {folder}: {n}.</source>
        <translation>{folder} 中其他未保存项目的文件：{n} 个。</translation>
    </message>
    <message>
        <source>Files written to {folder}: {files}.</source>
        <translation>文件已写入 {folder}：{files}。</translation>
    </message>
    <message>
        <source>Fine-tuning epochs</source>
        <translation>微调轮数</translation>
    </message>
    <message>
        <source>GPU: {name}</source>
        <translation>GPU：{name}</translation>
    </message>
    <message>
        <source>How many pixels to suggest per class</source>
        <translation>每个类别建议多少个像素</translation>
    </message>
    <message>
        <source>Id</source>
        <translation>编号</translation>
    </message>
    <message>
        <source>Import error: {error}</source>
        <translation>导入错误：{error}</translation>
    </message>
    <message>
        <source>Input rasters</source>
        <translation>输入栅格</translation>
    </message>
    <message>
        <source>JSON (*.json)</source>
        <translation>JSON (*.json)</translation>
    </message>
    <message>
        <source>Label samples</source>
        <translation>标注样本</translation>
    </message>
    <message>
        <source>Left click: label the pixel with the selected class. Right click: remove the nearest sample. Ctrl+Z: undo.</source>
        <translation>左键单击：用所选类别标注该像元。右键单击：删除最近的样本。Ctrl+Z：撤销。</translation>
    </message>
    <message>
        <source>Load a class list (JSON or CSV)</source>
        <translation>加载类别列表（JSON 或 CSV）</translation>
    </message>
    <message>
        <source>Load class list</source>
        <translation>加载类别列表</translation>
    </message>
    <message>
        <source>Log</source>
        <translation>日志</translation>
    </message>
    <message>
        <source>Mark the pixels where a label would help the last run's model most: where it is least sure, spread over the map and the classes</source>
        <translation>标出标注后对上次运行的模型帮助最大的像素：模型最不确定之处，分散在整幅地图和各个类别中</translation>
    </message>
    <message>
        <source>Masked-diffusion pretraining on unlabelled pixels; 0 = none. Ignored when a pretrained model is given. The cpu preset starts at 0: at CPU budgets pretraining did not improve accuracy in our measurements; try {0} or more.</source>
        <translation>在未标注像元上进行掩码扩散预训练；0 表示不预训练。给定预训练模型时忽略此项。cpu 预设默认为 0：在我们的测量中，CPU 预算下预训练并未提高精度；可尝试 {0} 或更多。</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>No accuracy estimate: it comes from cross-validation on your samples, which runs only with the window setting 'auto', more than 4 samples per class (median) and at least 2 in every class.</source>
        <translation>没有精度估计：精度估计来自对样本的交叉验证，而交叉验证只在窗口设置为 'auto'、每类样本数（中位数）多于 4 个且每个类别至少有 2 个样本时才会运行。</translation>
    </message>
    <message>
        <source>No pixel to suggest: every candidate is next to a sample or on nodata.</source>
        <translation>没有可建议的像素：所有候选像素都紧邻样本或位于无数据区。</translation>
    </message>
    <message>
        <source>No raster layer in the project: add the rasters to classify (Layer &gt; Add Layer).</source>
        <translation>项目中没有栅格图层：请添加要分类的栅格（图层 &gt; 添加图层）。</translation>
    </message>
    <message>
        <source>No sample near the click to remove.</source>
        <translation>单击位置附近没有可删除的样本。</translation>
    </message>
    <message>
        <source>No samples for: {names}. Label at least one pixel of every class, or remove the class.</source>
        <translation>以下类别没有样本：{names}。请为每个类别至少标注一个像元，或删除该类别。</translation>
    </message>
    <message>
        <source>No samples yet. Tick the input rasters, add classes, then press 'Label samples' and click on the map.</source>
        <translation>尚无样本。请勾选输入栅格、添加类别，然后按“标注样本”并在地图上单击。</translation>
    </message>
    <message>
        <source>Not on the pixel grid of {first}, so resampled onto it (bilinear): {list}.</source>
        <translation>与 {first} 的像元网格不一致，将重采样到该网格（双线性）：{list}。</translation>
    </message>
    <message>
        <source>Nothing to undo.</source>
        <translation>没有可撤销的操作。</translation>
    </message>
    <message>
        <source>Open a terminal and run this command (it installs into the Python that QGIS uses):</source>
        <translation>打开终端并运行此命令（安装到 QGIS 使用的 Python 中）：</translation>
    </message>
    <message>
        <source>Optional: an encoder from DiffCLIP Pretrain (or an earlier run) for the same sensors, instead of pretraining here.</source>
        <translation>可选：来自 DiffCLIP 预训练（或之前的运行）、针对相同传感器的编码器，用于代替在此处预训练。</translation>
    </message>
    <message>
        <source>Output folder</source>
        <translation>输出文件夹</translation>
    </message>
    <message>
        <source>Preset</source>
        <translation>预设</translation>
    </message>
    <message>
        <source>Pretrained model</source>
        <translation>预训练模型</translation>
    </message>
    <message>
        <source>Smoothing</source>
        <translation>平滑</translation>
    </message>
    <message>
        <source>{a} has no CRS but {b} has one, so they cannot be aligned: set the CRS of {a} (Layer Properties &gt; Source), or untick one of them.</source>
        <translation>{a} 没有坐标参考系，而 {b} 有，因此无法对齐：请设置 {a} 的坐标参考系（图层属性 &gt; 源），或取消勾选其中之一。</translation>
    </message>
    <message>
        <source>off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source> px</source>
        <translation> 像素</translation>
    </message>
    <message>
        <source>Radius of a majority filter over the map: every pixel takes the most common class around it, which removes isolated pixels (and objects smaller than the filter). Off by default; 1 to 2 pixels suit a map classified pixel by pixel.</source>
        <translation>地图多数滤波的半径：每个像素取其周围最常见的类别，可去除孤立像素（以及小于滤波器的地物）。默认关闭；逐像素分类的地图适合 1 到 2 像素。</translation>
    </message>
    <message>
        <source>Pretraining epochs</source>
        <translation>预训练轮数</translation>
    </message>
    <message>
        <source>Prompt</source>
        <translation>提示词</translation>
    </message>
    <message>
        <source>Prompt of the selected class</source>
        <translation>所选类别的提示词</translation>
    </message>
    <message>
        <source>PyTorch is missing: install it with the command shown in the dock, then restart QGIS.</source>
        <translation>缺少 PyTorch：请使用面板中显示的命令安装，然后重启 QGIS。</translation>
    </message>
    <message>
        <source>Remove class</source>
        <translation>删除类别</translation>
    </message>
    <message>
        <source>Remove the selected class and its samples</source>
        <translation>删除所选类别及其样本</translation>
    </message>
    <message>
        <source>Restart QGIS after the installation.</source>
        <translation>安装后请重启 QGIS。</translation>
    </message>
    <message>
        <source>Run</source>
        <translation>运行</translation>
    </message>
    <message>
        <source>Run a classification first: suggestions come from its model.</source>
        <translation>请先运行一次分类：建议来自其模型。</translation>
    </message>
    <message>
        <source>Run {n:03d} started; outputs go to {folder}.</source>
        <translation>第 {n:03d} 次运行已开始；输出保存到 {folder}。</translation>
    </message>
    <message>
        <source>Runs write numbered files here (diffclip_classification_001.tif, ...), never overwriting earlier runs.</source>
        <translation>每次运行在此写入带编号的文件（diffclip_classification_001.tif 等），不会覆盖之前的结果。</translation>
    </message>
    <message>
        <source>Samples</source>
        <translation>样本</translation>
    </message>
    <message>
        <source>Save class list</source>
        <translation>保存类别列表</translation>
    </message>
    <message>
        <source>Save the class list as JSON (for the PROMPTS parameter)</source>
        <translation>将类别列表保存为 JSON（用于 PROMPTS 参数）</translation>
    </message>
    <message>
        <source>Set the prompt to the template: {t}</source>
        <translation>将提示词设为模板：{t}</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Skip</source>
        <translation>跳过</translation>
    </message>
    <message>
        <source>Starting...</source>
        <translation>正在启动……</translation>
    </message>
    <message>
        <source>Suggest samples</source>
        <translation>建议样本</translation>
    </message>
    <message>
        <source>Suggesting samples cancelled.</source>
        <translation>已取消样本建议。</translation>
    </message>
    <message>
        <source>Suggesting samples failed: {error}</source>
        <translation>样本建议失败：{error}</translation>
    </message>
    <message>
        <source>Template</source>
        <translation>模板</translation>
    </message>
    <message>
        <source>{name} holds no data at this pixel: a sample there would be left out of the run. Label a pixel where every input holds data.</source>
        <translation>{name} 在此像元处没有数据：此处的样本会在运行时被排除。请标注所有输入都有数据的像元。</translation>
    </message>
    <message>
        <source>The click is outside the first input raster.</source>
        <translation>单击位置在第一个输入栅格之外。</translation>
    </message>
    <message>
        <source>The last run's model is gone ({path}): run again.</source>
        <translation>上次运行的模型已不存在（{path}）：请重新运行。</translation>
    </message>
    <message>
        <source>The pretrained model file does not exist: {path}</source>
        <translation>预训练模型文件不存在：{path}</translation>
    </message>
    <message>
        <source>The sample layer is in edit mode: save or discard its edits first.</source>
        <translation>样本图层处于编辑模式：请先保存或放弃其编辑。</translation>
    </message>
    <message>
        <source>Each prompt is its class's label: keep them distinct.</source>
        <translation>每个提示词就是其类别的标签：请保持互不相同。</translation>
    </message>
    <message>
        <source>The text encoder is trained from scratch on these prompts, so each prompt acts as a label for its class: the wording carries no prior meaning. Keep the prompts of different classes distinct.</source>
        <translation>文本编码器在这些提示词上从零开始训练，因此每个提示词只是其类别的标签：措辞本身不带任何先验含义。请让不同类别的提示词互不相同。</translation>
    </message>
    <message>
        <source>The ticked inputs are not those of the last run: run again to suggest samples for them.</source>
        <translation>勾选的输入与上次运行的不同：请重新运行，再为它们建议样本。</translation>
    </message>
    <message>
        <source>There is no sample layer in the project.</source>
        <translation>项目中没有样本图层。</translation>
    </message>
    <message>
        <source>Those samples&apos; classes clash with the class table ({pairs}). Rename or remove these classes in the table, then press &apos;Add them&apos; again.</source>
        <translation>这些样本的类别与类别表冲突（{pairs}）。请先在表中重命名或删除这些类别，然后再次点击“添加这些样本”。</translation>
    </message>
    <message>
        <source>Tick an input raster first: samples are placed on its pixels.</source>
        <translation>请先勾选一个输入栅格：样本将放置在其像元上。</translation>
    </message>
    <message>
        <source>Tick at least one input raster.</source>
        <translation>请至少勾选一个输入栅格。</translation>
    </message>
    <message>
        <source>Tick the rasters to classify together (e.g. hyperspectral and LiDAR). Drag to reorder: the first raster defines the pixel grid of samples and outputs.</source>
        <translation>勾选要一起分类的栅格（例如高光谱和激光雷达）。拖动可调整顺序：第一个栅格决定样本和输出的像元网格。</translation>
    </message>
    <message>
        <source>Train on the samples and classify the inputs, in the background</source>
        <translation>在后台用样本训练并对输入进行分类</translation>
    </message>
    <message>
        <source>Undo</source>
        <translation>撤销</translation>
    </message>
    <message>
        <source>Undo the last added or removed sample (Ctrl+Z on the map)</source>
        <translation>撤销上一次添加或删除的样本（在地图上按 Ctrl+Z）</translation>
    </message>
    <message>
        <source>Value of this class in the output raster</source>
        <translation>该类别在输出栅格中的像元值</translation>
    </message>
    <message>
        <source>Class proportions</source>
        <translation>类别比例</translation>
    </message>
    <message>
        <source>auto: the GPU when PyTorch sees one (CUDA), else the CPU. The line below says what PyTorch sees.</source>
        <translation>自动：PyTorch 检测到 GPU（CUDA）时使用 GPU，否则使用 CPU。下方一行显示 PyTorch 检测到的设备。</translation>
    </message>
    <message>
        <source>equal: rare classes found best</source>
        <translation>均等：最利于发现稀有类别</translation>
    </message>
    <message>
        <source>halfway to the scene's</source>
        <translation>介于均等与场景比例之间</translation>
    </message>
    <message>
        <source>per class</source>
        <translation>每类</translation>
    </message>
    <message>
        <source>the scene's: best overall accuracy</source>
        <translation>场景比例：总体精度最高</translation>
    </message>
    <message>
        <source>Training takes every class as equally common. The scene's class shares are estimated after training; ambiguous pixels can lean towards common classes.</source>
        <translation>训练时假定各类别同样常见。训练后会估计场景中各类别的比例；难以区分的像元可偏向常见类别。</translation>
    </message>
    <message>
        <source>Window</source>
        <translation>窗口</translation>
    </message>
    <message>
        <source>another CRS</source>
        <translation>坐标参考系不同</translation>
    </message>
    <message>
        <source>another extent</source>
        <translation>范围不同</translation>
    </message>
    <message>
        <source>another pixel size</source>
        <translation>像元大小不同</translation>
    </message>
    <message>
        <source>auto</source>
        <translation>自动</translation>
    </message>
    <message>
        <source>auto (from the scene's noise, or cross-validated on the samples)</source>
        <translation>自动（根据场景的噪声确定，或在样本上交叉验证）</translation>
    </message>
    <message>
        <source>cross-validating on the samples</source>
        <translation>在样本上交叉验证</translation>
    </message>
    <message>
        <source>class {n}</source>
        <translation>类别 {n}</translation>
    </message>
    <message>
        <source>classifying</source>
        <translation>分类</translation>
    </message>
    <message>
        <source>cpu: small model, minutes on a CPU</source>
        <translation>cpu：小模型，在 CPU 上需数分钟</translation>
    </message>
    <message>
        <source>fine-tuning</source>
        <translation>微调</translation>
    </message>
    <message>
        <source>no CRS</source>
        <translation>无坐标参考系</translation>
    </message>
    <message>
        <source>or, in a virtual environment that keeps QGIS's packages, then start QGIS from it:</source>
        <translation>或者，在保留 QGIS 软件包的虚拟环境中安装，然后从该环境启动 QGIS：</translation>
    </message>
    <message>
        <source>paper: the paper's model (a GPU is recommended)</source>
        <translation>paper：论文中的模型（建议使用 GPU）</translation>
    </message>
    <message>
        <source>pretraining</source>
        <translation>预训练</translation>
    </message>
    <message>
        <source>reading the inputs</source>
        <translation>读取输入</translation>
    </message>
    <message>
        <source>unknown (PyTorch is missing)</source>
        <translation>未知（缺少 PyTorch）</translation>
    </message>
    <message>
        <source>unknown error</source>
        <translation>未知错误</translation>
    </message>
    <message>
        <source>writing</source>
        <translation>写入</translation>
    </message>
    <message>
        <source>{bands} bands · {crs} · {dx:g} x {dy:g} {units} · {w} x {h} px</source>
        <translation>{bands} 个波段 · {crs} · {dx:g} x {dy:g} {units} · {w} x {h} 像元</translation>
    </message>
    <message>
        <source>{name}: {difference}</source>
        <translation>{name}：{difference}</translation>
    </message>
    <message>
        <source>{n} samples in {path}</source>
        <translation>{path} 中有 {n} 个样本</translation>
    </message>
    <message>
        <source>{n} samples of classes not in the table are left out.</source>
        <translation>已忽略 {n} 个不属于表中类别的样本。</translation>
    </message>
    <message>
        <source>{id} &apos;{name}&apos; here, {other_id} &apos;{other}&apos; there</source>
        <translation>此处为 {id}“{name}”，样本中为 {other_id}“{other}”</translation>
    </message>
    <message>
        <source>{n} samples of an unsaved project ({time}) were kept.</source>
        <translation>已保留未保存项目（{time}）的 {n} 个样本。</translation>
    </message>
    <message>
        <source>{n} suggested samples left: click one on the map (with 'Label samples') to pick its class, or skip it.</source>
        <translation>还剩 {n} 个建议样本：在地图上（使用“标注样本”）点击其中一个，选择其类别或跳过。</translation>
    </message>
    <message>
        <source>{path} is not a DiffCLIP sample layer (a point layer '{layer}' with a field 'class_id'). Move it away or save the project under another name.</source>
        <translation>{path} 不是 DiffCLIP 样本图层（应为包含字段“class_id”的点图层“{layer}”）。请移走该文件，或将项目另存为其他名称。</translation>
    </message>
    <message>
        <source>Another class is already called '{name}': class names must differ.</source>
        <translation>已有类别名为“{name}”：类别名称必须互不相同。</translation>
    </message>
    <message>
        <source>Add the rasters to classify to the project (or press 'Load demo').</source>
        <translation>请将要分类的栅格添加到工程中（或点击“加载示例”）。</translation>
    </message>
    <message>
        <source>the scene's</source>
        <translation>场景比例</translation>
    </message>
    <message>
        <source>Add the bundled demo (hyperspectral and LiDAR rasters, 12 classes and their samples) and zoom to it</source>
        <translation>添加内置示例（高光谱和 LiDAR 栅格、12 个类别及其样本）并缩放至该范围</translation>
    </message>
    <message>
        <source>Load demo</source>
        <translation>加载示例</translation>
    </message>
    <message>
        <source>Merge</source>
        <translation>合并</translation>
    </message>
    <message>
        <source>Rasters added to the project whose bands carry wavelengths are shown with the bands nearest 640, 550 and 460 nm, stretched, instead of the first three.</source>
        <translation>添加到工程中且波段带有波长信息的栅格，将用最接近 640、550 和 460 nm 的波段经拉伸显示，而不是前三个波段。</translation>
    </message>
    <message>
        <source>Replace</source>
        <translation>替换</translation>
    </message>
    <message>
        <source>Replacing leaves these samples out of runs (their class is not in the loaded list): {list}.</source>
        <translation>替换后以下样本将不参与运行（其类别不在加载的列表中）：{list}。</translation>
    </message>
    <message>
        <source>Show new rasters in true colour</source>
        <translation>以真彩色显示新栅格</translation>
    </message>
    <message>
        <source>The class table already has {n} classes. Replace them with the loaded list, or merge (keep the current classes and add the new ones)?</source>
        <translation>类别表中已有 {n} 个类别。用加载的列表替换它们，还是合并（保留当前类别并添加新类别）？</translation>
    </message>
    <message>
        <source>cpu</source>
        <translation>cpu</translation>
    </message>
    <message>
        <source>equal</source>
        <translation>相等</translation>
    </message>
    <message>
        <source>halfway</source>
        <translation>折中</translation>
    </message>
    <message>
        <source>n</source>
        <translation>数</translation>
    </message>
    <message>
        <source>paper</source>
        <translation>paper</translation>
    </message>
    <message>
        <source>{bands} bands · {dx:g} {units}</source>
        <translation>{bands} 个波段 · {dx:g} {units}</translation>
    </message>
    <message>
        <source>{name} ({n} samples)</source>
        <translation>{name}（{n} 个样本）</translation>
    </message>
    <message>
        <source>Classified in {s:.0f} s. Estimated accuracy {a:.0f} % (see the Log).</source>
        <translation>分类完成，用时 {s:.0f} 秒。估计精度 {a:.0f} %（见日志）。</translation>
    </message>
    <message>
        <source>Classified in {s:.0f} s. No accuracy estimate (see the Log).</source>
        <translation>分类完成，用时 {s:.0f} 秒。没有精度估计（见日志）。</translation>
    </message>
    <message>
        <source>The run was cancelled: the plugin was turned off.</source>
        <translation>运行已取消：插件已被关闭。</translation>
    </message>
    <message>
        <source>Few samples per class (see the Log).</source>
        <translation>每类样本很少（见日志）。</translation>
    </message>
    <message>
        <source>Nothing added: another project was opened (see the Log).</source>
        <translation>未添加任何内容：已打开另一个项目（见日志）。</translation>
    </message>
    <message>
        <source>{n} suggested samples on the map: click one to label it.</source>
        <translation>地图上有 {n} 个建议样本：点击其中一个进行标注。</translation>
    </message>
    <message>
        <source>Cannot create the output folder {folder}: {error}. Choose another output folder in Settings.</source>
        <translation>无法创建输出文件夹 {folder}：{error}。请在“设置”中选择其他输出文件夹。</translation>
    </message>
    <message>
        <source>Cannot write into the output folder {folder}. Choose another output folder in Settings.</source>
        <translation>无法写入输出文件夹 {folder}。请在“设置”中选择其他输出文件夹。</translation>
    </message>
    <message>
        <source>Replacing gives these samples the loaded class of their id: {list}.</source>
        <translation>替换后，这些样本将归入载入列表中同一编号的类别：{list}。</translation>
    </message>
    <message>
        <source>the copy cannot be read back</source>
        <translation>无法读回副本</translation>
    </message>
    <message>
        <source>the sample layer is in edit mode: save or discard its edits, then save the project again</source>
        <translation>样本图层处于编辑模式：请保存或放弃其编辑，然后再次保存项目</translation>
    </message>
    <message>
        <source>{n} samples become {name}</source>
        <translation>{n} 个样本变为 {name}</translation>
    </message>
    <message>
        <source>Samples without a class (left from a class removed or replaced earlier) take the loaded class of their id, and its name: {list}.</source>
        <translation>没有类别的样本（先前删除或替换的类别留下的）将归入载入列表中同一编号的类别并采用其名称：{list}。</translation>
    </message>
    <message>
        <source>{name} ({n} samples) become {other}</source>
        <translation>{name}（{n} 个样本）变为 {other}</translation>
    </message>
    <message>
        <source>{path} already exists. Replace it?</source>
        <translation>{path} 已存在。要替换它吗？</translation>
    </message>
    <message>
        <source>{source} cannot be read</source>
        <translation>无法读取 {source}</translation>
    </message>
</context>
<context>
    <name>DiffClipPlugin</name>
    <message>
        <source>DiffCLIP Few-shot Classification</source>
        <translation>DiffCLIP 小样本分类</translation>
    </message>
    <message>
        <source>Show the DiffCLIP dock: click samples, edit class prompts and classify</source>
        <translation>显示 DiffCLIP 面板：点击标注样本、编辑类别提示词并分类</translation>
    </message>
</context>
</TS>
